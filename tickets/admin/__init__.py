"""The agent console (the Django admin): the ticket queue and page (``tickets``), the AI's records and
panel (``ai``), set-up — customers, queues, SLAs, escalation rules, agents (``setup``) — and the inbox:
views, saved views, tags (``inbox``) — and the website widget's sites (``widget``)."""

from tickets.admin import ai, ai_versions, inbox, macros, setup, tickets, widget

__all__ = ["ai", "ai_versions", "inbox", "macros", "setup", "tickets", "widget"]
