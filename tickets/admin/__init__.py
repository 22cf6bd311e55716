"""The agent console (the Django admin): the ticket queue and page (``tickets``), the AI's records and
panel (``ai``), and set-up — customers, queues, SLAs, escalation rules, agents (``setup``)."""

from tickets.admin import ai, macros, setup, tickets

__all__ = ["ai", "macros", "setup", "tickets"]
