"""What a customer does in the conversation besides writing: say whether an AI answer helped, ask for a
person, mark the conversation solved, pick the language of its pages. Each is checked against the ticket's
state under its row lock."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tickets import events, realtime
from tickets.models import ActorKind, Message, Ticket, TicketEvent
from tickets.services.common import AuthorKind, Status, TicketRuleError, _event, _locked
from tickets.services.conversations import _transition
from tickets.services.drafts import hand_over

HUMAN_REQUESTED_REASON = "Customer asked for a person"
_NOT_ACTIVE = {  # one whole sentence per state, for the translators
    Status.RESOLVED: gettext_lazy("%(reference)s is resolved; write a message to reopen it first."),
    Status.CLOSED: gettext_lazy("%(reference)s is closed; start a new conversation."),
}


@transaction.atomic
def message_record_feedback(*, message: Message, helpful: bool) -> Message:
    """The customer's "Did this answer your question?" on an AI answer; a later vote replaces it.

    Only the assistant's knowledge-base answers are rated (they carry a confidence); the votes feed the
    calibration table on the AI analytics page."""
    if message.author_kind != AuthorKind.AI or message.is_internal or message.ai_confidence is None:
        raise TicketRuleError(_("Only the assistant's answers can be rated."))
    ticket = _locked(message.ticket)
    if ticket.status == Status.CLOSED:
        raise TicketRuleError(_("%(reference)s is closed.") % {"reference": ticket.reference})
    vote = "yes" if helpful else "no"
    previous = Message.objects.filter(pk=message.pk).values_list("feedback", flat=True).get()
    if previous != vote:
        Message.objects.filter(pk=message.pk).update(feedback=vote, feedback_at=timezone.now())
        _event(
            ticket,
            TicketEvent.Kind.AI_FEEDBACK,
            actor_kind=ActorKind.CUSTOMER,
            field="feedback",
            from_value=previous,
            to_value=vote,
            note=f"message {message.seq}",
        )
        events.publish(events.AI_ANSWER_RATED, ticket_id=ticket.pk, message_id=message.pk, vote=vote)
    message.feedback = vote
    return message


@transaction.atomic
def ticket_request_human(*, ticket: Ticket, reason: str = HUMAN_REQUESTED_REASON) -> Ticket:
    """The customer asks for a person (the chat's button): handed over once, like the assistant would."""
    ticket = _locked(ticket)
    if not ticket.is_active:
        raise TicketRuleError(_NOT_ACTIVE[ticket.status] % {"reference": ticket.reference})
    return hand_over(ticket=ticket, reason=reason, actor_kind=ActorKind.CUSTOMER)


@transaction.atomic
def ticket_resolve_by_customer(*, ticket: Ticket) -> Ticket:
    """The customer says their question is solved: the ticket is resolved and the rating opens."""
    ticket = _locked(ticket)
    if ticket.status in (Status.RESOLVED, Status.CLOSED):
        return ticket
    changed = _transition(
        ticket, Status.RESOLVED, now=timezone.now(), actor=None, actor_kind=ActorKind.CUSTOMER, note="Solved"
    )
    ticket.save(update_fields=sorted({*changed, "updated_at"}))
    ticket.refresh_from_db()
    realtime.broadcast_on_commit(realtime.broadcast_status, ticket.pk)
    events.publish(events.TICKET_STATUS_CHANGED, ticket_id=ticket.pk, status=Status.RESOLVED)
    return ticket


@transaction.atomic
def ticket_set_ui_language(*, ticket: Ticket, language: str) -> Ticket:
    """The customer picked the language of this conversation's pages (the switcher on its page): it now
    wins over the detected language, for the page, what is pushed live and the emails."""
    if language not in dict(settings.LANGUAGES):
        raise TicketRuleError(_("Pick one of the languages offered."))
    ticket = _locked(ticket)
    if ticket.ui_language != language or not ticket.ui_language_chosen:
        ticket.ui_language, ticket.ui_language_chosen = language, True
        ticket.save(update_fields=["ui_language", "ui_language_chosen", "updated_at"])
    return ticket
