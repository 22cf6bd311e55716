"""Beat work on tickets: SLA breaches, closing long-resolved tickets, the retention purge."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tickets import events, realtime
from tickets.email import storage as email_storage
from tickets.models import AIDraft, AIRun, Attachment, EmailRecord, Ticket, TicketEvent
from tickets.services.common import Status, _event, _locked
from tickets.services.conversations import _transition
from tickets.services.queues import ticket_escalate

# --- SLA sweep (beat) -----------------------------------------------------------------------------


def ticket_sla_sweep(*, now: dt.datetime | None = None) -> int:
    """Flag tickets whose SLA clock ran out, once each, with an event. Idempotent; returns flags set.

    The flag is set by compare-and-set, so two sweeps running at once (two beats by mistake) still
    write one event per breach.
    """
    now = now or timezone.now()
    flagged = 0
    overdue_first = Ticket.objects.filter(
        first_response_breached=False,
        first_response_at__isnull=True,
        first_response_due_at__lt=now,
        status__in=Ticket.ACTIVE_STATUSES,
    ).values_list("pk", flat=True)
    overdue_resolution = Ticket.objects.filter(
        resolution_breached=False,
        resolution_due_at__lt=now,
        sla_paused_at__isnull=True,
        status__in=[Status.NEW, Status.OPEN],
    ).values_list("pk", flat=True)
    for field, pks in (("first_response_breached", overdue_first), ("resolution_breached", overdue_resolution)):
        for pk in list(pks[:1000]):
            with transaction.atomic():
                if Ticket.objects.filter(pk=pk, **{field: False}).update(**{field: True}) == 1:
                    ticket = Ticket.objects.get(pk=pk)
                    what = field.removesuffix("_breached")
                    _event(ticket, TicketEvent.Kind.SLA_BREACHED, field=what)
                    events.publish(events.TICKET_SLA_BREACHED, ticket_id=pk, field=field)
                    if not ticket.escalated:
                        label = "first response" if what == "first_response" else "resolution"
                        ticket_escalate(ticket=ticket, reason=f"SLA breached: {label} overdue")
                    flagged += 1
    return flagged


def ticket_auto_close(*, now: dt.datetime | None = None) -> int:
    """Close tickets resolved for ``AUTO_CLOSE_RESOLVED_DAYS`` (0 = never). Each in its own transaction,
    re-checked under the row lock, so a customer reopening at the same moment wins."""
    days = getattr(settings, "AUTO_CLOSE_RESOLVED_DAYS", 7)
    if days <= 0:
        return 0
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=days)
    closed = 0
    for pk in list(
        Ticket.objects.filter(status=Status.RESOLVED, resolved_at__lt=cutoff).values_list("pk", flat=True)[:2000]
    ):
        with transaction.atomic():
            ticket = _locked(Ticket(pk=pk))
            if ticket.status != Status.RESOLVED or ticket.resolved_at is None or ticket.resolved_at >= cutoff:
                continue
            changed = _transition(ticket, Status.CLOSED, now=now, actor=None, note=f"Resolved for {days} days")
            ticket.save(update_fields=sorted({*changed, "updated_at"}))
            _event(ticket, TicketEvent.Kind.AUTO_CLOSED, note=f"Resolved for {days} days")
            realtime.broadcast_on_commit(realtime.broadcast_status, pk)
            events.publish(events.TICKET_STATUS_CHANGED, ticket_id=pk, status=Status.CLOSED)
            closed += 1
    return closed


def _stored_email_files(ticket_id: int) -> list[str]:
    """The stored files of a ticket's emails (attachments, raw MIME), to delete with it."""
    return [
        *Attachment.objects.filter(ticket_id=ticket_id).values_list("storage_name", flat=True),
        *EmailRecord.objects.filter(ticket_id=ticket_id).exclude(raw_name="").values_list("raw_name", flat=True),
    ]


def retention_purge(*, now: dt.datetime | None = None) -> dict:
    """Apply the retention settings: AI call details (``RETENTION_AI_DETAILS_DAYS``) and closed
    tickets with everything in them (``RETENTION_CLOSED_TICKETS_DAYS``, 0 = keep), their stored email
    files too (on commit, unless another ticket has the same bytes). Idempotent."""
    now = now or timezone.now()
    out = {"ai_runs_cleared": 0, "drafts_deleted": 0, "tickets_deleted": 0}
    details_days = getattr(settings, "RETENTION_AI_DETAILS_DAYS", 90)
    if details_days > 0:
        cutoff = now - dt.timedelta(days=details_days)
        out["ai_runs_cleared"] = (
            AIRun.objects.filter(created_at__lt=cutoff).exclude(meta={}, error="").update(meta={}, error="")
        )
        out["drafts_deleted"] = AIDraft.objects.filter(
            created_at__lt=cutoff,
            status__in=[AIDraft.Status.PENDING, AIDraft.Status.DISCARDED],
            ticket__status=Status.CLOSED,
        ).delete()[0]
    ticket_days = getattr(settings, "RETENTION_CLOSED_TICKETS_DAYS", 0)
    if ticket_days > 0:
        cutoff = now - dt.timedelta(days=ticket_days)
        for pk in list(
            Ticket.objects.filter(status=Status.CLOSED, closed_at__lt=cutoff).values_list("pk", flat=True)[:1000]
        ):
            with transaction.atomic():
                files = _stored_email_files(pk)
                Ticket.objects.filter(pk=pk).delete()
                transaction.on_commit(lambda files=files: email_storage.delete_unreferenced(files))
                out["tickets_deleted"] += 1
    return out
