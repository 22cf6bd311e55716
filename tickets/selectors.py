"""Reads of tickets, scoped to who is asking. Every list, page and action in the agent console goes
through ``ticket_queryset_for_user`` so an agent never reaches a ticket outside their queues.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import Http404

from supportflow.logs import set_log_context
from tickets.models import Department, Macro, Message, Ticket, TicketEvent

Status = Ticket.Status
CUSTOMER_TOKEN_SALT = "supportflow.chat.conversation"  # noqa: S105 — a namespace, not a secret
CUSTOMER_TOKEN_MAX_AGE = 60 * 60 * 24 * 90  # a conversation link works for 90 days


def ticket_customer_token(*, ticket: Ticket) -> str:
    """The customer's bearer credential for one conversation: the ticket's random access key, signed.

    It carries no id; rotating ``access_key`` revokes every link and cookie made from it.
    """
    return signing.dumps(ticket.access_key, salt=CUSTOMER_TOKEN_SALT, compress=False)


def ticket_get_for_customer(*, token: str) -> Ticket:
    """The conversation this token opens, or 404 for anything else (bad signature, expired, revoked)."""
    try:
        key = signing.loads(token, salt=CUSTOMER_TOKEN_SALT, max_age=CUSTOMER_TOKEN_MAX_AGE)
        ticket = Ticket.objects.select_related("customer").get(access_key=key)
    except (signing.BadSignature, Ticket.DoesNotExist, TypeError, ValueError) as exc:
        raise Http404("This conversation link is not valid.") from exc
    set_log_context(ticket=ticket.reference)
    return ticket


def ticket_customer_messages(*, ticket: Ticket, after_seq: int = 0, limit: int = 500) -> list[Message]:
    """What the customer may see: public messages only, in order, after a sequence number."""
    return list(
        ticket.messages.filter(is_internal=False, seq__gt=after_seq)
        .select_related("author_user")
        .order_by("seq")[:limit]
    )


def ticket_customer_answer(*, ticket: Ticket, seq: int) -> Message:
    """One of the assistant's answers in this conversation (what the customer may rate), or 404."""
    message = (
        ticket.messages.filter(seq=seq, is_internal=False, author_kind=Message.AuthorKind.AI)
        .exclude(ai_confidence=None)
        .select_related("ticket")
        .first()
    )
    if message is None:
        raise Http404("There is no answer to rate here.")
    return message


def user_sees_all_departments(user: AbstractBaseUser) -> bool:
    return (
        user.is_superuser
        or settings.FEATURE_AGENTS_SEE_ALL_DEPARTMENTS
        or user.has_perm("tickets.view_all_departments_ticket")
    )


def ticket_queryset_for_user(*, user: AbstractBaseUser) -> QuerySet[Ticket]:
    """Tickets this staff user may see: everything for managers, else their queues, unrouted and own."""
    tickets = Ticket.objects.all()
    if not (user.is_active and user.is_staff and user.has_perm("tickets.view_ticket")):
        return tickets.none()
    if user_sees_all_departments(user):
        return tickets
    # A subquery, not a join: no DISTINCT, so lists and their counts stay index scans (the join +
    # DISTINCT made an agent's API ticket list twice as slow as a manager's at 12k tickets).
    served = Department.objects.filter(agents__user=user).values("pk")
    return tickets.filter(Q(department__in=served) | Q(department__isnull=True) | Q(assignee=user))


def ticket_get_for_user(*, user: AbstractBaseUser, pk: int | str) -> Ticket:
    """The ticket if this user may see it; otherwise 404 (never reveal that it exists)."""
    try:
        ticket = ticket_queryset_for_user(user=user).select_related("customer", "department", "assignee").get(pk=pk)
    except (Ticket.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such ticket.") from exc
    set_log_context(ticket=ticket.reference)
    return ticket


def ticket_thread(*, ticket: Ticket, include_internal: bool) -> QuerySet[Message]:
    messages = ticket.messages.select_related("author_user").order_by("seq")
    return messages if include_internal else messages.filter(is_internal=False)


def ticket_replies_since(*, ticket: Ticket, after_seq: int, viewer: AbstractBaseUser, limit: int = 20) -> list[Message]:
    """What was said to or by the customer after ``after_seq`` by someone other than ``viewer``: customer
    messages and public replies (agent or AI), oldest first. A reply written without them may repeat or
    contradict them (the console's collision check); internal notes and system lines are not included."""
    kinds = (Message.AuthorKind.CUSTOMER, Message.AuthorKind.AGENT, Message.AuthorKind.AI)
    return list(
        ticket.messages.filter(seq__gt=after_seq, is_internal=False, author_kind__in=kinds)
        .exclude(author_kind=Message.AuthorKind.AGENT, author_user=viewer)
        .select_related("author_user")
        .order_by("seq")[:limit]
    )


def customer_earlier_tickets(*, ticket: Ticket, user: AbstractBaseUser | None = None, limit: int = 5) -> list[Ticket]:
    """The customer's other tickets, newest first (subject, outcome, rating, one-line summary): what an
    agent, or the assistant, should know before answering. ``user``: only the tickets they may see."""
    scope = Ticket.objects.all() if user is None else ticket_queryset_for_user(user=user)
    return list(
        scope.filter(customer_id=ticket.customer_id, created_at__lt=ticket.created_at)
        .exclude(pk=ticket.pk)
        .only("pk", "reference", "subject", "status", "escalated", "csat_score", "ai_summary", "created_at")
        .order_by("-created_at")[:limit]
    )


def ticket_events(*, ticket: Ticket) -> QuerySet[TicketEvent]:
    return ticket.events.select_related("actor").order_by("created_at", "pk")


# --- macros (canned replies) ---------------------------------------------------------------------


def macro_queryset_for_user(*, user: AbstractBaseUser) -> QuerySet[Macro]:
    """Macros this staff user may use and read: their own, and the shared ones for every department or
    for one of theirs (every shared one for those who see all departments). Never another's personal one."""
    if not (user.is_active and user.is_staff and user.has_perm("tickets.view_macro")):
        return Macro.objects.none()
    shared = Q(owner__isnull=True)
    if not user_sees_all_departments(user):
        served = Department.objects.filter(agents__user=user).values("pk")
        shared &= Q(department__isnull=True) | Q(department__in=served)
    return Macro.objects.filter(Q(owner=user) | shared)


def macros_for_ticket(*, user: AbstractBaseUser, ticket: Ticket) -> QuerySet[Macro]:
    """The macros offered in this ticket's reply box: the user's, for every department or the ticket's."""
    return (
        macro_queryset_for_user(user=user)
        .filter(Q(department__isnull=True) | Q(department_id=ticket.department_id))
        .order_by(Lower("name"), "owner_id", "pk")
    )


def macro_get_for_ticket(*, user: AbstractBaseUser, ticket: Ticket, pk: int | str) -> Macro:
    """One macro the user may insert on this ticket, or 404."""
    try:
        return macros_for_ticket(user=user, ticket=ticket).get(pk=pk)
    except (Macro.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such macro.") from exc


def sla_breached_q(now: dt.datetime) -> Q:
    """Tickets whose SLA is breached at ``now``: first response or resolution late, answered or not."""
    return (
        Q(first_response_breached=True)
        | Q(resolution_breached=True)
        | Q(first_response_at__isnull=True, first_response_due_at__lt=now, status__in=Ticket.ACTIVE_STATUSES)
        | Q(resolution_due_at__lt=now, sla_paused_at__isnull=True, status__in=[Status.NEW, Status.OPEN])
    )


def attachment_get_for_user(*, user: AbstractBaseUser, pk: int | str):
    """An email attachment, if this staff user may see its ticket; otherwise 404."""
    from tickets.models import Attachment

    try:
        attachment = Attachment.objects.get(pk=pk)
    except (Attachment.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such file.") from exc
    ticket_get_for_user(user=user, pk=attachment.ticket_id)
    return attachment


def attachment_get_for_customer(*, token: str, pk: int | str):
    """An attachment of the conversation this token opens, on a message the customer can see; else 404."""
    from tickets.models import Attachment

    ticket = ticket_get_for_customer(token=token)
    try:
        return Attachment.objects.get(pk=pk, ticket=ticket, message__is_internal=False)
    except (Attachment.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such file.") from exc
