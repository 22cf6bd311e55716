"""Who works a ticket: assignment, automatic assignment, escalation, routing and triage corrections."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from tickets import events
from tickets.models import AgentProfile, Department, Priority, Ticket, TicketEvent
from tickets.roles import user_is_agent
from tickets.services.common import Status, TicketRuleError, _apply_sla, _event, _locked


def _agent_serves(user: AbstractBaseUser, department: Department | None) -> bool:
    if department is None or user.is_superuser:
        return True
    return department.agents.filter(user=user).exists() or user.has_perm("tickets.view_all_departments_ticket")


@transaction.atomic
def ticket_assign(
    *, ticket: Ticket, assignee: AbstractBaseUser | None, actor: AbstractBaseUser | None = None
) -> Ticket:
    """Assign (or, with ``assignee=None``, unassign). Assigning someone else needs the right to."""
    if assignee is not None and not user_is_agent(assignee):
        raise TicketRuleError(_("%(name)s is not an active agent.") % {"name": assignee.get_username()})
    if actor is not None and assignee != actor and not actor.has_perm("tickets.assign_others_ticket"):
        raise TicketRuleError(_("You can assign tickets to yourself only."))
    ticket = _locked(ticket)
    if ticket.status == Status.CLOSED:
        raise TicketRuleError(_("%(reference)s is closed.") % {"reference": ticket.reference})
    if assignee is not None and not _agent_serves(assignee, ticket.department):
        raise TicketRuleError(
            _("%(name)s does not work the %(queue)s queue.")
            % {"name": assignee.get_username(), "queue": ticket.department}
        )
    if ticket.assignee_id == (assignee.pk if assignee else None):
        return ticket
    previous = ticket.assignee
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    _event(
        ticket,
        TicketEvent.Kind.ASSIGNED,
        actor=actor,
        field="assignee",
        from_value=previous.get_username() if previous else "",
        to_value=assignee.get_username() if assignee else "",
    )
    events.publish(events.TICKET_ASSIGNED, ticket_id=ticket.pk, assignee_id=assignee.pk if assignee else None)
    return ticket


@transaction.atomic
def ticket_auto_assign(*, ticket: Ticket) -> AbstractBaseUser | None:
    """Give an unassigned ticket to the least-loaded available agent of its department.

    Load = the agent's active tickets (new, open, pending); agents at their capacity are skipped; ties
    go to whoever was assigned longest ago (round robin). The department's agent profiles are locked
    in a fixed order for the decision, so two workers assigning at once cannot both pick the same
    last free slot. Returns the assignee, or ``None`` when nobody is free (the ticket waits in the queue).
    """
    ticket = _locked(ticket)
    if ticket.assignee_id or ticket.department_id is None or not ticket.is_active:
        return ticket.assignee
    profiles = list(
        AgentProfile.objects.select_for_update(of=("self",))
        .filter(departments=ticket.department_id, is_available=True, user__is_active=True)
        .select_related("user")
        .order_by("pk")
    )
    profiles = [p for p in profiles if user_is_agent(p.user)]
    if not profiles:
        return None
    loads = dict(
        Ticket.objects.filter(assignee__in=[p.user_id for p in profiles], status__in=Ticket.ACTIVE_STATUSES)
        .values_list("assignee")
        .annotate(n=Count("pk"))
    )
    free = [p for p in profiles if loads.get(p.user_id, 0) < p.max_open_tickets]
    if not free:
        return None
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    chosen = min(free, key=lambda p: (loads.get(p.user_id, 0), p.last_assigned_at or epoch, p.pk))
    ticket_assign(ticket=ticket, assignee=chosen.user)
    AgentProfile.objects.filter(pk=chosen.pk).update(last_assigned_at=timezone.now())
    return chosen.user


@transaction.atomic
def ticket_escalate(
    *,
    ticket: Ticket,
    reason: str,
    actor: AbstractBaseUser | None = None,
    actor_kind: str | None = None,
    department: Department | None = None,
    priority: str | None = None,
) -> Ticket:
    """Hand the ticket to humans: flag it, record why, optionally re-route and raise its priority."""
    reason = " ".join(reason.split())[:255]
    if not reason:
        raise TicketRuleError(_("Say why the ticket is escalated."))
    ticket = _locked(ticket)
    if not ticket.is_active:
        raise TicketRuleError(
            _("%(reference)s is %(status)s; reopen it before escalating.")
            % {"reference": ticket.reference, "status": ticket.get_status_display().lower()}
        )
    now = timezone.now()
    changed = ["escalated", "escalation_reason", "escalated_at", "needs_human", "updated_at"]
    ticket.escalated, ticket.escalation_reason, ticket.escalated_at, ticket.needs_human = True, reason, now, True
    _event(ticket, TicketEvent.Kind.ESCALATED, actor=actor, actor_kind=actor_kind, note=reason)
    changed += _change_routing(ticket, actor=actor, actor_kind=actor_kind, department=department, priority=priority)
    ticket.save(update_fields=sorted(set(changed)))
    events.publish(events.TICKET_ESCALATED, ticket_id=ticket.pk, reason=reason)
    return ticket


def _change_routing(
    ticket: Ticket,
    *,
    actor: AbstractBaseUser | None,
    actor_kind: str | None,
    department: Department | None = None,
    priority: str | None = None,
) -> list[str]:
    changed: list[str] = []
    if priority is not None and priority != ticket.priority:
        if priority not in Priority.values:
            raise TicketRuleError(_("Unknown priority %(value)r.") % {"value": priority})
        _event(
            ticket,
            TicketEvent.Kind.PRIORITY_CHANGED,
            actor=actor,
            actor_kind=actor_kind,
            field="priority",
            from_value=ticket.priority,
            to_value=priority,
        )
        ticket.priority = priority
        changed.append("priority")
    if department is not None and department.pk != ticket.department_id:
        _event(
            ticket,
            TicketEvent.Kind.DEPARTMENT_CHANGED,
            actor=actor,
            actor_kind=actor_kind,
            field="department",
            from_value=ticket.department or "",
            to_value=department,
        )
        ticket.department = department
        changed.append("department")
        if ticket.assignee_id and not _agent_serves(ticket.assignee, department):
            _event(
                ticket,
                TicketEvent.Kind.ASSIGNED,
                actor=actor,
                actor_kind=actor_kind,
                field="assignee",
                from_value=ticket.assignee.get_username(),
                to_value="",
                note="Assignee does not work the new queue.",
            )
            ticket.assignee = None
            changed.append("assignee")
    if changed:
        _apply_sla(ticket)
        changed += ["first_response_due_at", "resolution_due_at"]
    return changed


TRIAGE_TEXT_FIELDS = ("category", "sentiment", "language", "ai_summary")


@transaction.atomic
def ticket_update_triage(
    *,
    ticket: Ticket,
    actor: AbstractBaseUser | None = None,
    actor_kind: str | None = None,
    details: dict | None = None,
    **fields: Any,
) -> Ticket:
    """Change triage fields (category, sentiment, language, AI summary, priority, department).

    Each change is an event; a change by an agent to what the AI set is the label the triage model
    later learns from. Priority or department changes recompute the SLA due times. ``details``: the AI's
    full triage (``Ticket.triage``), stored in the same statement as the fields.
    """
    unknown = set(fields) - {*TRIAGE_TEXT_FIELDS, "priority", "department"}
    if unknown:
        raise TicketRuleError(f"Not triage fields: {', '.join(sorted(unknown))}.")
    ticket = _locked(ticket)
    changed: list[str] = []
    for name in TRIAGE_TEXT_FIELDS:
        if name not in fields or fields[name] is None:
            continue
        value = str(fields[name]).strip()
        if name == "sentiment" and value and value not in Ticket.Sentiment.values:
            raise TicketRuleError(f"Unknown sentiment {value!r}.")
        if value != getattr(ticket, name):
            if name != "ai_summary":
                _event(
                    ticket,
                    TicketEvent.Kind.TRIAGE_CHANGED,
                    actor=actor,
                    actor_kind=actor_kind,
                    field=name,
                    from_value=getattr(ticket, name),
                    to_value=value,
                )
            setattr(ticket, name, value)
            changed.append(name)
    changed += _change_routing(
        ticket,
        actor=actor,
        actor_kind=actor_kind,
        department=fields.get("department"),
        priority=fields.get("priority"),
    )
    if details is not None:
        ticket.triage = details
    if changed:
        ticket.save(update_fields=sorted({*changed, "updated_at", *(("triage",) if details is not None else ())}))
        events.publish(events.TICKET_UPDATED, ticket_id=ticket.pk, fields=sorted(set(changed)))
    elif details is not None:
        Ticket.objects.filter(pk=ticket.pk).update(triage=details)
    return ticket


def department_notify_escalation(*, ticket_id: int, reason: str) -> bool:
    """Send the escalation notice to the department's address, if it has one. The subject and body
    are built from stored fields; header values never contain line breaks (no header injection)."""
    from django.core.mail import send_mail

    ticket = Ticket.objects.select_related("department", "customer").filter(pk=ticket_id).first()
    if ticket is None or ticket.department is None or not ticket.department.email:
        return False
    subject = " ".join(f"[{ticket.reference}] Escalated: {ticket.subject}".split())[:200]
    link = f"{settings.SITE_URL.rstrip('/')}/admin/tickets/ticket/{ticket.pk}/change/" if settings.SITE_URL else ""
    body = "\n".join(
        line
        for line in (
            f"{ticket.reference} needs a person in {ticket.department.name}.",
            f"Reason: {reason}",
            f"Priority: {ticket.priority}",
            f"Summary: {ticket.ai_summary}" if ticket.ai_summary else "",
            link,
        )
        if line
    )
    send_mail(subject, body, None, [ticket.department.email])
    return True
