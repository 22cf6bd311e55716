"""Merging two tickets of one customer into one conversation (the customer wrote twice about one thing).

The secondary's messages join the primary's thread in the order they were written — each ticket's own
order kept — and the thread is numbered 1…N again, gap-free, as every reader of ``seq`` expects; its
events, AI runs and drafts, attachments and emails move along. The primary keeps the earliest SLA due
times and first response (the customer has waited since the earlier one); the secondary is closed as
merged through the state machine, and its reference leads to the primary in the console, the chat and
the API (``selectors.ticket_follow_merge``). Open pages of either ticket are told to reload.
"""

from __future__ import annotations

import datetime as dt
import heapq

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from tickets import events, realtime
from tickets.models import AIDraft, AIRun, Attachment, EmailRecord, Message, Ticket, TicketEvent
from tickets.services.common import AuthorKind, Status, TicketRuleError, _event, _locked
from tickets.services.conversations import _transition, message_create

MERGED_NOTICE_TEMPLATE = "admin/tickets/ticket/merge.html#merged_notice"


@transaction.atomic
def ticket_merge(*, primary: Ticket, secondary: Ticket, actor: AbstractBaseUser | None = None) -> Ticket:
    """Merge ``secondary`` into ``primary`` (both of one customer, neither closed) in one transaction.

    Both rows are locked in one fixed order (by id) whichever way round the merge goes, so two merges of
    the same pair, or a merge and a customer writing to either ticket, wait for each other instead of
    deadlocking. Returns the primary, as stored."""
    if primary.pk == secondary.pk:
        raise TicketRuleError(_("A ticket cannot be merged into itself."))
    locked = {pk: _locked(Ticket(pk=pk)) for pk in sorted((primary.pk, secondary.pk))}
    primary, secondary = locked[primary.pk], locked[secondary.pk]
    _merge_check(primary, secondary)

    moved = _thread_merge(primary, secondary)
    for model in (TicketEvent, AIRun, AIDraft, Attachment, EmailRecord):
        model.objects.filter(ticket=secondary).update(ticket=primary)
    Ticket.objects.filter(merged_into=secondary).update(merged_into=primary)  # no chains of merges

    now = timezone.now()
    absorbed = _primary_absorb(primary, secondary, total=moved["total"], now=now, actor=actor)
    primary.save(update_fields=sorted({*absorbed, "updated_at"}))
    secondary.merged_into = primary
    secondary.last_message_seq = 0
    secondary.ai_cost = 0
    note = _("Merged into %(reference)s.") % _ref(primary)
    closed = _transition(secondary, Status.CLOSED, now=now, actor=actor, note=note)
    secondary.save(update_fields=sorted({*closed, "merged_into", "last_message_seq", "ai_cost", "updated_at"}))

    _event(secondary, TicketEvent.Kind.MERGED, actor=actor, field="merged_into", to_value=primary.reference, note=note)
    _event(
        primary,
        TicketEvent.Kind.MERGED,
        actor=actor,
        field="merged_from",
        from_value=secondary.reference,
        note=_("%(reference)s merged in: %(count)s of its messages moved here.")
        % {"reference": secondary.reference, "count": moved["secondary"]},
    )
    with translation.override(primary.language or None):  # the customer reads it: their language
        body = _("Conversation %(reference)s was merged into this one.") % _ref(secondary)
    message_create(ticket=primary, author_kind=AuthorKind.SYSTEM, body=body)
    realtime.broadcast_on_commit(_announce, primary.pk, secondary.pk)
    events.publish(events.TICKET_STATUS_CHANGED, ticket_id=secondary.pk, status=Status.CLOSED)
    events.publish(events.TICKET_UPDATED, ticket_id=primary.pk, fields=["merged", *sorted(set(absorbed))])
    primary.refresh_from_db()
    return primary


def _merge_check(primary: Ticket, secondary: Ticket) -> None:
    for ticket in (secondary, primary):
        if ticket.merged_into_id:
            raise TicketRuleError(_("%(reference)s was already merged into another ticket.") % _ref(ticket))
    if secondary.status == Status.CLOSED:
        raise TicketRuleError(_("%(reference)s is closed: its record is final.") % _ref(secondary))
    if primary.status == Status.CLOSED:
        raise TicketRuleError(_("%(reference)s is closed: merge into a ticket that is still open.") % _ref(primary))
    if primary.customer_id != secondary.customer_id:
        raise TicketRuleError(
            _(
                "%(first)s and %(second)s are from different customers (%(first_customer)s, %(second_customer)s): "
                "only tickets of one customer can be merged."
            )
            % {
                "first": secondary.reference,
                "second": primary.reference,
                "first_customer": secondary.customer,
                "second_customer": primary.customer,
            }
        )


def _ref(ticket: Ticket) -> dict[str, str]:
    return _ref_of(ticket.reference)


def _ref_of(reference: str) -> dict[str, str]:
    return {"reference": reference}


def _thread_merge(primary: Ticket, secondary: Ticket) -> dict[str, int]:
    """Both threads into the primary's, ordered by the time each message was written; each ticket's own
    order is kept even where clocks disagree with it (``heapq.merge`` never reorders an input; a tie goes
    to the primary). Renumbered in two statements that never collide with the unique (ticket, seq):
    first above every number in use, then down to 1…N."""
    rows = list(
        Message.objects.filter(ticket_id__in=(primary.pk, secondary.pk))
        .order_by("seq")
        .values_list("pk", "ticket_id", "seq", "created_at", "client_msg_id")
    )
    theirs = [row for row in rows if row[1] == secondary.pk]
    ours = [row for row in rows if row[1] == primary.pk]
    order = [row[0] for row in heapq.merge(ours, theirs, key=lambda row: row[3])]
    taken = {row[4] for row in ours if row[4]}
    clashing = [row[0] for row in theirs if row[4] in taken]
    if clashing:  # a client id is unique per ticket; the primary's copy keeps it
        Message.objects.filter(pk__in=clashing).update(client_msg_id="")
    offset = max([len(order), primary.last_message_seq, secondary.last_message_seq, *(row[2] for row in rows)])
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS m SET ticket_id = %s, seq = %s + v.n "  # noqa: S608 — our own table name
            "FROM unnest(%s::bigint[]) WITH ORDINALITY AS v(id, n) WHERE m.id = v.id",
            [primary.pk, offset, order],
        )
        cursor.execute(
            f"UPDATE {table} SET seq = seq - %s WHERE ticket_id = %s",  # noqa: S608 — our own table name
            [offset, primary.pk],
        )
    return {"total": len(order), "secondary": len(theirs)}


def _earliest(*values: dt.datetime | None) -> dt.datetime | None:
    return min((v for v in values if v is not None), default=None)


def _primary_absorb(
    primary: Ticket, secondary: Ticket, *, total: int, now: dt.datetime, actor: AbstractBaseUser | None
) -> list[str]:
    """The primary's clocks and state after the merge (not saved); returns the fields it changed."""
    changed = ["last_message_seq", "ai_cost"]
    primary.last_message_seq = total
    primary.ai_cost += secondary.ai_cost
    answered = _earliest(primary.first_response_at, secondary.first_response_at)
    waiting = secondary.status in (Status.NEW, Status.OPEN) and primary.status in (Status.PENDING, Status.RESOLVED)
    if waiting or (primary.status == Status.NEW and answered is not None):
        # the customer waits on the merged-in conversation, or it was already answered there
        note = _("%(reference)s merged in.") % _ref(secondary)
        changed += _transition(primary, Status.OPEN, now=now, actor=actor, note=note)
    primary.first_response_due_at = _earliest(primary.first_response_due_at, secondary.first_response_due_at)
    primary.resolution_due_at = _earliest(primary.resolution_due_at, secondary.resolution_due_at)
    primary.first_response_at = answered
    primary.last_customer_message_at = max(
        (v for v in (primary.last_customer_message_at, secondary.last_customer_message_at) if v is not None),
        default=None,
    )
    due = primary.first_response_due_at
    primary.first_response_breached = bool(
        primary.first_response_breached
        or secondary.first_response_breached
        or (answered is not None and due is not None and answered > due)
    )
    primary.resolution_breached = primary.resolution_breached or secondary.resolution_breached
    return [
        *changed,
        "first_response_due_at",
        "resolution_due_at",
        "first_response_at",
        "last_customer_message_at",
        "first_response_breached",
        "resolution_breached",
    ]


def _announce(primary_id: int, secondary_id: int) -> None:
    """Open pages of either ticket hold a thread that was renumbered: each is told what happened and
    offered a reload (the secondary's console page: a link to the merged ticket). The customer's page of
    the secondary reloads into the merged conversation (its link now opens it). Customers are told in
    the conversation's language, agents in the one active here."""
    reference, language = Ticket.objects.filter(pk=primary_id).values_list("reference", "language").get()
    with translation.override(language or None):
        to_customers = _notices(reference, link="")
    link = reverse("admin:tickets_ticket_change", args=[primary_id])
    realtime.send_html(
        (realtime.customer_audience(secondary_id), to_customers["away"]),
        (realtime.customer_audience(primary_id), to_customers["here"]),
        *realtime.agent_sends(secondary_id, lambda: _notices(reference, link=link)["away"]),
        *realtime.agent_sends(primary_id, lambda: _notices(reference, link=link)["here"]),
    )


def _notices(reference: str, *, link: str) -> dict[str, str]:
    """The notices for pages of the merged-away ticket and of the kept one; ``link``: where the
    merged-away page goes ("": a reload, which its link now turns into the kept ticket)."""
    reload = _("Reload to see all of it")
    away = _("This conversation was merged into %(reference)s.") % _ref_of(reference)
    here = _("Another conversation was merged into this one.")
    go = _("Open %(reference)s") % _ref_of(reference) if link else reload
    return {
        "away": render_to_string(MERGED_NOTICE_TEMPLATE, {"text": away, "link": link, "label": go}),
        "here": render_to_string(MERGED_NOTICE_TEMPLATE, {"text": here, "link": "", "label": reload}),
    }
