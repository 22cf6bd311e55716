"""An agent's reply from the console, checked for collision: nothing is sent on top of messages the
agent had not seen (another agent's or the AI's reply, or the customer's next message)."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from tickets import selectors
from tickets.models import AIDraft, Macro, Message, Ticket
from tickets.services.common import _locked
from tickets.services.macros import ticket_reply_send


class ReplyConflict(Exception):
    """Someone wrote to the customer after what the agent had seen; nothing was sent.

    ``messages``: those messages, oldest first. ``seen_through``: the newest of them, which a confirmed
    "Send anyway" passes back so that only messages added after the warning warn again."""

    def __init__(self, messages: list[Message]):
        super().__init__(f"{len(messages)} message(s) added since the reply was started")
        self.messages = messages
        self.seen_through = messages[-1].seq


@transaction.atomic
def agent_reply_send(
    *,
    ticket: Ticket,
    actor: AbstractBaseUser,
    body: str,
    is_internal: bool = False,
    set_status: str | None = None,
    draft: AIDraft | None = None,
    seen_through: int | None = None,
    macros: Sequence[Macro] = (),
) -> Message:
    """Send the agent's reply (or their edit of an AI ``draft``), or an internal note, then the inserted
    ``macros``' actions and ``set_status`` (``macros.ticket_reply_send``: all or nothing).

    ``seen_through``: the sequence number of the newest message the agent had seen when writing. If a
    customer message or a public reply by someone else came after it, ``ReplyConflict`` is raised and
    nothing is written. Checked under the ticket's row lock — the lock every new message takes — so no
    message can slip in between the check and the send. Internal notes are not checked: they never
    reach the customer, so they cannot cross a reply. None skips the check (a client that did not say).

    A draft is locked before the ticket, in the order ``ai_draft_use`` takes them.
    """
    if draft is not None:
        draft = AIDraft.objects.select_for_update().get(pk=draft.pk)
    if seen_through is not None and not is_internal:
        locked = _locked(ticket)
        if locked.last_message_seq > seen_through:
            newer = selectors.ticket_replies_since(ticket=locked, after_seq=seen_through, viewer=actor)
            if newer:
                raise ReplyConflict(newer)
    return ticket_reply_send(
        ticket=ticket,
        actor=actor,
        body=body,
        is_internal=is_internal,
        then_status=set_status or "",
        draft=draft,
        macros=macros,
    )
