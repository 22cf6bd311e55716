"""The agent console (the Django admin): the ticket queue and page (``tickets``), the AI's records and
panel (``ai``), set-up — customers, queues, SLAs, escalation rules, agents (``setup``) — and the inbox:
views, saved views, tags (``inbox``)."""

from tickets.admin import ai, inbox, macros, setup, tickets

__all__ = ["ai", "inbox", "macros", "setup", "tickets"]
