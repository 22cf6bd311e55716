"""What the ticket page shows besides the model form: the thread, the side column (customer, triage,
SLA clocks, AI, articles, macros) and the previous/next ticket of the list the agent came from.

Every read here is bounded: a fixed number of queries whatever the number of tickets or messages
(``tests/test_ticket_page_queries.py`` holds it to that).
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import FieldError, SuspiciousOperation, ValidationError
from django.db import connection
from django.db.models import Count, F, OrderBy, Window
from django.db.models.functions import Lag, Lead, RowNumber
from django.http import HttpRequest, QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext

from tickets import selectors, services
from tickets.admin.ai import ai_panel_context
from tickets.admin.macros import MACRO_OPTIONS_LIMIT
from tickets.forms import EscalateForm
from tickets.models import Ticket

FILTERS_PARAM = "_changelist_filters"  # Django's own name for the list's query string on an object page
NAV_PARAM = "_nav"  # "<previous id>.<next id>", carried across the page's own POST redirects
SOON = dt.timedelta(hours=1)


# --- SLA clocks -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    label: str
    state: str  # met, breached, overdue, soon, running, paused, none
    text: str
    at: dt.datetime | None = None


def _running(label: str, due: dt.datetime, now: dt.datetime) -> Clock:
    if due <= now:
        return Clock(label, "overdue", gettext("Overdue by %(t)s") % {"t": timesince(due, now)}, due)
    state = "soon" if due - now < SOON else "running"
    return Clock(label, state, gettext("Due in %(t)s") % {"t": timeuntil(due, now)}, due)


def sla_clocks(ticket: Ticket, now: dt.datetime) -> list[Clock]:
    """First response and resolution, each met, late, running (due in / overdue by) or paused."""
    first = gettext("First response")
    if ticket.first_response_at is not None:
        late = ticket.first_response_breached
        text = gettext("Answered late") if late else gettext("Answered in time")
        clocks = [Clock(first, "breached" if late else "met", text, ticket.first_response_at)]
    elif ticket.first_response_due_at is not None:
        clocks = [_running(first, ticket.first_response_due_at, now)]
    else:
        clocks = [Clock(first, "none", gettext("No target (no SLA for this queue)"))]
    resolution = gettext("Resolution")
    if ticket.resolved_at is not None:
        late = ticket.resolution_breached
        text = gettext("Resolved late") if late else gettext("Resolved in time")
        clocks.append(Clock(resolution, "breached" if late else "met", text, ticket.resolved_at))
    elif ticket.sla_paused_at is not None:
        text = gettext("Paused: waiting on the customer for %(t)s") % {"t": timesince(ticket.sla_paused_at, now)}
        clocks.append(Clock(resolution, "paused", text, ticket.sla_paused_at))
    elif ticket.resolution_due_at is not None:
        clocks.append(_running(resolution, ticket.resolution_due_at, now))
    else:
        clocks.append(Clock(resolution, "none", gettext("No target (no SLA for this queue)")))
    return clocks


# --- relevant articles: one entry per article -------------------------------------------------------------


def articles_from_hits(hits: list, *, limit: int = 5) -> list[dict]:
    """Passages grouped by article, best first: each article once, with its best passage's heading and
    snippet and how many other passages of it matched."""
    articles: dict[int, dict] = {}
    for hit in hits:
        entry = articles.get(hit.article_id)
        if entry is None:
            if len(articles) == limit:
                continue
            articles[hit.article_id] = {"hit": hit, "more": 0}
        else:
            entry["more"] += 1
    return list(articles.values())


# --- previous / next ticket in the agent's list -----------------------------------------------------------


@dataclass(frozen=True)
class Neighbours:
    prev_id: int | None
    next_id: int | None
    position: int | None = None
    total: int | None = None


def _order_expression(item):
    if isinstance(item, str):
        name = item.lstrip("-")
        if item == "?" or "." in name:  # random order, or raw SQL from extra(): no stable neighbours
            return None
        return F(name).desc() if item.startswith("-") else F(name).asc()
    if isinstance(item, OrderBy):
        return item
    return item.asc() if hasattr(item, "asc") else None


def _list_queryset(model_admin, request: HttpRequest, filters: str):
    """The list's queryset for these filters — scoped, filtered, searched and ordered exactly as the list
    page builds it (its ChangeList), without the list's counts and page of rows."""
    params = QueryDict(filters)
    if any("\x00" in key or "\x00" in value for key, values in params.lists() for value in values):
        raise SuspiciousOperation("NUL in the list's filters")  # PostgreSQL text cannot hold it
    list_request = copy.copy(request)
    list_request.GET = params
    list_display = model_admin.get_list_display(list_request)
    links = model_admin.get_list_display_links(list_request, list_display)
    if model_admin.get_actions(list_request):  # the column numbers in ``o=`` count the checkbox column
        list_display = ["action_checkbox", *list_display]

    class ListWithoutResults(model_admin.get_changelist(list_request)):
        def get_results(self, request):
            return None

    changelist = ListWithoutResults(
        list_request,
        model_admin.model,
        list_display,
        links,
        model_admin.get_list_filter(list_request),
        model_admin.date_hierarchy,
        model_admin.get_search_fields(list_request),
        model_admin.get_list_select_related(list_request),
        model_admin.list_per_page,
        model_admin.list_max_show_all,
        model_admin.list_editable,
        model_admin,
        model_admin.get_sortable_by(list_request),
        model_admin.search_help_text,
    )
    return changelist.queryset


def ticket_neighbours(model_admin, request: HttpRequest, *, ticket_id: int, filters: str) -> Neighbours | None:
    """The tickets before and after this one in the list these filters make, and its place in it: one
    query (window functions over the list's own queryset). ``None`` when the ticket is not in that list."""
    try:
        queryset = _list_queryset(model_admin, request, filters)
    except (IncorrectLookupParameters, SuspiciousOperation, FieldError, ValidationError, ValueError):
        return None
    ordering = [_order_expression(item) for item in queryset.query.order_by]
    if not ordering or None in ordering:
        return None
    rows = (
        queryset.order_by()
        .annotate(
            sf_prev=Window(Lag("pk"), order_by=ordering),
            sf_next=Window(Lead("pk"), order_by=ordering),
            sf_position=Window(RowNumber(), order_by=ordering),
            sf_total=Window(Count("pk")),
        )
        .values_list("pk", "sf_prev", "sf_next", "sf_position", "sf_total")
    )
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        # The window runs over the whole list; only then is the one row picked (a WHERE inside would
        # leave the window one row to look at).
        cursor.execute(
            f"SELECT prev, next, position, total FROM ({sql}) AS list (id, prev, next, position, total) "  # noqa: S608 — Django's own SQL with its parameters
            "WHERE list.id = %s",
            [*params, ticket_id],
        )
        row = cursor.fetchone()
    return Neighbours(*row) if row else None


def carried_neighbours(*, user, raw: str) -> Neighbours | None:
    """The neighbours the page had before its own POST (``_nav=<prev>.<next>``), if still visible: after
    "resolve", the list may order or filter the ticket elsewhere, but "next" should stay the next one."""
    prev_id, dot, next_id = raw.partition(".")
    if not dot or not all(part.isdigit() or part == "" for part in (prev_id, next_id)):
        return None
    wanted = {int(part) for part in (prev_id, next_id) if part}
    visible = set(selectors.ticket_queryset_for_user(user=user).filter(pk__in=wanted).values_list("pk", flat=True))
    return Neighbours(
        int(prev_id) if prev_id and int(prev_id) in visible else None,
        int(next_id) if next_id and int(next_id) in visible else None,
    )


def page_url(ticket_id: int, filters: str, neighbours: Neighbours | None = None) -> str:
    params = {FILTERS_PARAM: filters} if filters else {}
    if neighbours is not None:
        params[NAV_PARAM] = f"{neighbours.prev_id or ''}.{neighbours.next_id or ''}"
    url = reverse("admin:tickets_ticket_change", args=[ticket_id])
    return f"{url}?{urlencode(params)}" if params else url


def navigation(model_admin, request: HttpRequest, ticket: Ticket) -> dict:
    filters = request.GET.get(FILTERS_PARAM, "")
    neighbours = carried_neighbours(user=request.user, raw=request.GET.get(NAV_PARAM, "")) or ticket_neighbours(
        model_admin, request, ticket_id=ticket.pk, filters=filters
    )
    list_url = reverse("admin:tickets_ticket_changelist") + (f"?{filters}" if filters else "")
    nav = {"list_url": list_url, "neighbours": neighbours}
    if neighbours is not None:
        nav["carry"] = f"{neighbours.prev_id or ''}.{neighbours.next_id or ''}"
        nav["prev_url"] = page_url(neighbours.prev_id, filters) if neighbours.prev_id else ""
        nav["next_url"] = page_url(neighbours.next_id, filters) if neighbours.next_id else ""
    return nav


# --- the page -----------------------------------------------------------------------------------------


def ticket_actions(request: HttpRequest, ticket: Ticket) -> list[tuple[str, str, str]]:
    """The buttons above the thread, through the state machine: (action, label, keyboard shortcut)."""
    actions = []
    if ticket.status != Ticket.Status.CLOSED and ticket.assignee_id != request.user.pk:
        actions.append(("assign_me", gettext("Assign to me"), "a"))
    for target, action, label, key in (
        (Ticket.Status.PENDING, "pending", gettext("Set pending"), ""),
        (Ticket.Status.RESOLVED, "resolve", gettext("Resolve"), "R"),
        (Ticket.Status.CLOSED, "close", gettext("Close"), ""),
    ):
        if services.can_transition(ticket.status, target):
            actions.append((action, label, key))
    if ticket.status == Ticket.Status.RESOLVED:
        actions.append(("reopen", gettext("Reopen"), ""))
    return actions


def page_context(model_admin, request: HttpRequest, ticket: Ticket) -> dict:
    scheme = "wss" if request.is_secure() else "ws"
    macros = list(selectors.macros_for_ticket(user=request.user, ticket=ticket)[:MACRO_OPTIONS_LIMIT])
    return {
        "ws_url": f"{scheme}://{request.get_host()}/ws/agent/tickets/{ticket.pk}/",
        "thread": selectors.ticket_thread(ticket=ticket, include_internal=True),
        "escalate_form": EscalateForm(),
        "ticket_actions": ticket_actions(request, ticket),
        "ai": ai_panel_context(request.user, ticket),
        "earlier_tickets": selectors.customer_earlier_tickets(ticket=ticket, user=request.user),
        "sla_clocks": sla_clocks(ticket, timezone.now()),
        "macros": macros,
        "nav": navigation(model_admin, request, ticket),
        "triage_names": model_admin.triage_fields,
    }
