"""Tickets an agent opens for a customer in the console: a phone call, a visit, an email forwarded by hand.

They go through ``ticket_create`` like every channel's (SLA clock, ``created`` event, webhooks, the AI's
triage), marked ``opened_by`` the agent: the AI then triages and drafts but never answers on its own —
the customer is on the phone or at the desk, not on a channel where an AI message would reach them, and
the agent already has the conversation (as after an agent's first reply).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from tickets.models import Department, Priority, Ticket
from tickets.services.common import TicketRuleError
from tickets.services.conversations import customer_get_or_create, ticket_create
from tickets.services.queues import _agent_serves, ticket_assign

Channel = Ticket.Channel

# Every channel but the API's own: an agent logs what came by phone, in person, by email, chat, Slack or
# Discord. An email ticket's replies are emailed to the customer, like those of one that came by email.
CONSOLE_CHANNELS = (Channel.PHONE, Channel.IN_PERSON, Channel.EMAIL, Channel.CHAT, Channel.SLACK, Channel.DISCORD)


@transaction.atomic
def ticket_open_for_customer(
    *,
    actor: AbstractBaseUser,
    body: str,
    channel: str,
    department: Department,
    customer_email: str = "",
    customer_name: str = "",
    subject: str = "",
    priority: str = Priority.NORMAL,
    assign_to_me: bool = True,
) -> Ticket:
    """Open a ticket in one of the agent's queues with the customer's words as its first message.

    The customer is found by email (case-insensitive) or created; a walk-in may give only a name.
    ``assign_to_me``: the agent takes it at once (an ``assigned`` event like any assignment)."""
    email = customer_email.strip()
    name = customer_name.strip()
    if channel not in CONSOLE_CHANNELS:
        raise TicketRuleError(
            _("Choose how the customer reached you: phone, in person, email, chat, Slack or Discord.")
        )
    if not (email or name):
        raise TicketRuleError(_("Give the customer's email address or name."))
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise TicketRuleError(_("“%(email)s” is not an email address.") % {"email": email}) from exc
    elif channel == Channel.EMAIL:
        raise TicketRuleError(_("An email ticket needs the customer's email address: the replies go there."))
    if not department.is_active or not _agent_serves(actor, department):
        raise TicketRuleError(_("You do not work the %(queue)s queue.") % {"queue": department})
    customer = customer_get_or_create(email=email, name=name)
    ticket = ticket_create(
        customer=customer,
        subject=subject,
        body=body,
        channel=channel,
        priority=priority,
        department=department,
        actor=actor,
        opened_by=actor,
    )
    if assign_to_me:
        ticket = ticket_assign(ticket=ticket, assignee=actor, actor=actor)
    return ticket
