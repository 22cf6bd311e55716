"""The agent's inbox, read side: the built-in views (Mine, Unassigned, …), the filters of the ticket list
that saved views are made of, and every view's count for one agent in one query.

One vocabulary of list filters: the querystring keys the console's ticket list understands, each mapped
to a ``Q`` here. The list applies these same conditions (``tickets.admin.inbox``), a saved view is checked
against the vocabulary before it is stored (no arbitrary lookups), and each view's count is a conditional
aggregate over the agent's scope (``ticket_queryset_for_user``): the number beside a view is what opening
it lists, and an agent never counts a ticket they could not open.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, OuterRef, Q
from django.http import Http404, QueryDict
from django.utils import timezone
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tickets.models import Department, Priority, SavedView, Tag, Ticket
from tickets.roles import user_is_manager
from tickets.selectors import sla_breached_q, ticket_queryset_for_user, user_sees_all_departments

Status = Ticket.Status
User = AbstractBaseUser

VIEW = "view"  # the querystring keys with a name here: the built-in view, the tag, the search, the order
TAG = "tag"
SEARCH = "q"
ORDER = "o"
SLA_RISK_WINDOW = dt.timedelta(hours=1)
RECENTLY_RESOLVED = dt.timedelta(days=7)
SAVED_VIEWS_SHOWN = 50  # each is one more FILTER clause in the count query
SEARCH_MAX_LENGTH = 200
# How the list's search box matches (the ticket admin searches with exactly these).
SEARCH_LOOKUPS = ("reference__iexact", "subject__icontains", "customer__email__icontains", "customer__name__icontains")


class FilterError(ValueError):
    """A querystring that is not a view of the ticket list; ``str()`` says why, fit to show."""


# --- the built-in views --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InboxView:
    slug: str
    label: str
    condition: Callable[[User, dt.datetime], Q]
    counted: bool = True


def _active() -> Q:
    return Q(status__in=Ticket.ACTIVE_STATUSES)


def sla_at_risk_q(now: dt.datetime) -> Q:
    """Active, not breached, and a clock the ticket still runs on — the first response while none was
    given, the resolution while it is not paused — falls due within ``SLA_RISK_WINDOW``."""
    soon = now + SLA_RISK_WINDOW
    first = Q(first_response_at__isnull=True, first_response_due_at__gte=now, first_response_due_at__lt=soon)
    resolution = Q(
        status__in=[Status.NEW, Status.OPEN],
        sla_paused_at__isnull=True,
        resolution_due_at__gte=now,
        resolution_due_at__lt=soon,
    )
    return _active() & (first | resolution) & ~sla_breached_q(now)


INBOX_VIEWS = (
    InboxView("mine", _("Mine"), lambda user, now: _active() & Q(assignee_id=user.pk)),
    InboxView("unassigned", _("Unassigned"), lambda user, now: _active() & Q(assignee__isnull=True)),
    InboxView("open", _("All open"), lambda user, now: _active()),
    InboxView("escalated", _("Escalated"), lambda user, now: _active() & Q(escalated=True)),
    InboxView("sla_risk", _("SLA at risk"), lambda user, now: sla_at_risk_q(now)),
    InboxView("sla_breached", _("SLA breached"), lambda user, now: _active() & sla_breached_q(now)),
    InboxView("waiting", _("Waiting on customer"), lambda user, now: Q(status=Status.PENDING)),
    InboxView(
        "resolved",
        _("Recently resolved"),
        lambda user, now: Q(status__in=[Status.RESOLVED, Status.CLOSED], resolved_at__gte=now - RECENTLY_RESOLVED),
    ),
    # The one place closed tickets show without asking for them by status: not an inbox, not counted.
    InboxView("all", _("All tickets"), lambda user, now: Q(), counted=False),
)
VIEWS = {view.slug: view for view in INBOX_VIEWS}


# --- the filter vocabulary -----------------------------------------------------------------------------


def _choice(values: Iterable[str], name: str) -> Callable[[str], str]:
    allowed = frozenset(values)

    def clean(value: str) -> str:
        if value not in allowed:
            message = gettext("Unknown value “%(value)s” for %(filter)s.")
            raise FilterError(message % {"value": value[:40], "filter": name})
        return value

    return clean


def _id(value: str) -> str:
    if not (value.isascii() and value.isdigit() and 0 < len(value) <= 10 and int(value) < 2**31):
        raise FilterError(gettext("“%(value)s” is not a number.") % {"value": value[:40]})
    return str(int(value))


def _flag(true: str, false: str) -> Callable[[str], str]:
    """Booleans as the list's links write them (``true``/``false``), also accepting 1/0 and true/false."""

    def clean(value: str) -> str:
        lowered = value.lower()
        if lowered in ("1", "true"):
            return true
        if lowered in ("0", "false"):
            return false
        raise FilterError(gettext("“%(value)s” is neither yes nor no.") % {"value": value[:40]})

    return clean


def _search(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise FilterError(gettext("The search is empty."))
    if len(value) > SEARCH_MAX_LENGTH:
        raise FilterError(gettext("The search is longer than %(max)d characters.") % {"max": SEARCH_MAX_LENGTH})
    return value


def _order(value: str) -> str:
    if not re.fullmatch(r"-?\d{1,2}(\.-?\d{1,2}){0,9}", value):
        raise FilterError(gettext("“%(value)s” is not an order of the list.") % {"value": value[:40]})
    return value


def search_q(term: str) -> Q:
    """The list's search: every word (or "quoted phrase") must match one of ``SEARCH_LOOKUPS``."""
    words = []
    for bit in smart_split(term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        words.append(Q.create([(lookup, bit) for lookup in SEARCH_LOOKUPS], connector=Q.OR))
    return Q.create(words)


def tag_q(tag_id: int) -> Q:
    """Tickets carrying the tag: a subquery, so a count over tickets never multiplies rows by tags."""
    return Q(Exists(Tag.tickets.through.objects.filter(ticket_id=OuterRef("pk"), tag_id=tag_id)))


def _assigned_q(value: str, user: User) -> Q:
    if value == "me":
        return Q(assignee_id=user.pk)
    if value == "none":
        return Q(assignee__isnull=True)
    return Q(assignee__isnull=False) & ~Q(assignee_id=user.pk)


@dataclasses.dataclass(frozen=True)
class ListFilter:
    clean: Callable[[str], str]
    condition: Callable[[str, User, dt.datetime], Q]


FILTERS: Mapping[str, ListFilter] = {
    VIEW: ListFilter(_choice(VIEWS, _("view")), lambda v, user, now: VIEWS[v].condition(user, now)),
    "status__exact": ListFilter(_choice(Status.values, _("status")), lambda v, user, now: Q(status=v)),
    "priority__exact": ListFilter(_choice(Priority.values, _("priority")), lambda v, user, now: Q(priority=v)),
    "department__id__exact": ListFilter(_id, lambda v, user, now: Q(department_id=int(v))),
    "department__isnull": ListFilter(_flag("True", "False"), lambda v, user, now: Q(department__isnull=v == "True")),
    "assigned": ListFilter(_choice(("me", "none", "others"), _("assignee")), lambda v, user, now: _assigned_q(v, user)),
    "escalated__exact": ListFilter(_flag("1", "0"), lambda v, user, now: Q(escalated=v == "1")),
    "sla": ListFilter(
        _choice(("breached", "ok"), _("SLA")),
        lambda v, user, now: sla_breached_q(now) if v == "breached" else ~sla_breached_q(now),
    ),
    "channel__exact": ListFilter(_choice(Ticket.Channel.values, _("channel")), lambda v, user, now: Q(channel=v)),
    TAG: ListFilter(_id, lambda v, user, now: tag_q(int(v))),
    SEARCH: ListFilter(_search, lambda v, user, now: search_q(v)),
}
KEPT = {ORDER: _order}  # saved with a view, but no say in which tickets it shows
DROPPED = frozenset({"p", "all", "e", "_facets"})  # the page, show-all, the error flag, facet counts


def hides_closed(params: Mapping[str, object]) -> bool:
    """The list leaves closed tickets out unless it is asked for them: a view, or a status filter."""
    return VIEW not in params and "status__exact" not in params


def view_query_clean(query: str | QueryDict) -> str:
    """The canonical querystring of a view: known keys only, each once with a checked value, in one order
    (so two ways of writing the same filters compare equal). Raises ``FilterError`` saying what is wrong."""
    params = QueryDict(query.removeprefix("?")) if isinstance(query, str) else query
    unknown = sorted(key for key in params if key not in FILTERS and key not in KEPT and key not in DROPPED)
    if unknown:
        names = ", ".join(key[:40] for key in unknown[:5])
        raise FilterError(gettext("These filters cannot be part of a saved view: %(names)s.") % {"names": names})
    cleaned = []
    for key, clean in [*((k, f.clean) for k, f in FILTERS.items()), *KEPT.items()]:
        values = params.getlist(key)
        if len(values) > 1:
            raise FilterError(gettext("The filter %(key)s is given more than once.") % {"key": key})
        if values:
            cleaned.append((key, clean(values[0])))
    return urlencode(cleaned)


def filters_q(query: str, *, user: User, now: dt.datetime) -> Q:
    """The tickets a canonical querystring (``view_query_clean``) selects, within the user's scope."""
    params = QueryDict(query)
    condition = Q()
    for key, list_filter in FILTERS.items():
        if key in params:
            condition &= list_filter.condition(params[key], user, now)
    if hides_closed(params):
        condition &= ~Q(status=Status.CLOSED)
    return condition


def query_has_filters(query: str) -> bool:
    return any(key in FILTERS for key in QueryDict(query))


# --- saved views ---------------------------------------------------------------------------------------


def _saved_views_visible_q(user: User) -> Q:
    """Your own views, and the views shared with a team whose queue you see."""
    if user_sees_all_departments(user):
        return Q(owner_id=user.pk) | Q(department__isnull=False)
    served = Department.objects.filter(agents__user=user).values("pk")
    return Q(owner_id=user.pk) | Q(department__in=served)


def saved_views_for_user(*, user: User) -> list[SavedView]:
    """Personal views first, then the shared ones by team; at most ``SAVED_VIEWS_SHOWN``."""
    return list(
        SavedView.objects.filter(_saved_views_visible_q(user))
        .select_related("department")
        .order_by(F("department__name").asc(nulls_first=True), "name", "pk")[:SAVED_VIEWS_SHOWN]
    )


def saved_view_get_for_user(*, user: User, pk: int | str) -> SavedView:
    """A saved view this user sees, or 404 (another agent's personal view is not said to exist)."""
    try:
        return SavedView.objects.select_related("department").get(_saved_views_visible_q(user), pk=pk)
    except (SavedView.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(gettext("No such view.")) from exc


def saved_view_can_change(*, view: SavedView, user: User) -> bool:
    """Its owner renames, shares (a manager) or deletes it; managers also look after every shared view."""
    return view.owner_id == user.pk or (view.is_shared and user_is_manager(user))


def saved_view_q(view: SavedView, *, user: User, now: dt.datetime) -> Q | None:
    """``None`` for a stored query that no longer reads as a view (it is shown, uncounted)."""
    try:
        return filters_q(view_query_clean(view.query), user=user, now=now)
    except FilterError:
        return None


# --- counts --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InboxCounts:
    views: dict[str, int]
    saved: dict[int, int | None]
    changed: int | None = None


def _recent_only(query: str) -> bool:
    """Whether a view's tickets are all active or recently resolved: every built-in view but "all" is, and
    so is a status filter on an active status."""
    params = QueryDict(query)
    view = params.get(VIEW)
    return (view is not None and view != "all") or params.get("status__exact") in Ticket.ACTIVE_STATUSES


def _count(condition: Q) -> Count:
    return Count("pk", filter=condition) if condition else Count("pk")


def inbox_counts(
    *,
    user: User,
    saved_views: Iterable[SavedView] = (),
    changed_since: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> InboxCounts:
    """Every built-in and saved view's count — and, with ``changed_since``, how many visible tickets changed
    since then — in one query: one conditional aggregate per view over the user's scope.

    The built-in views only count active or recently resolved tickets, so the query reads only those
    (by index) unless a saved view may reach older ones: the long tail of closed tickets is not read
    every 10 s for every open list."""
    now = now or timezone.now()
    aggregates = {f"view_{v.slug}": _count(v.condition(user, now)) for v in INBOX_VIEWS if v.counted}
    rows = Q(status__in=Ticket.ACTIVE_STATUSES) | Q(resolved_at__gte=now - RECENTLY_RESOLVED)
    saved: dict[int, int | None] = {}
    for view in saved_views:
        condition = saved_view_q(view, user=user, now=now)
        saved[view.pk] = None
        if condition is not None:
            aggregates[f"saved_{view.pk}"] = _count(condition)
            rows = rows if _recent_only(view.query) else Q()
    if changed_since is not None:
        aggregates["changed"] = Count("pk", filter=Q(updated_at__gt=changed_since))
        rows = rows | Q(updated_at__gt=changed_since) if rows else rows
    row = ticket_queryset_for_user(user=user).filter(rows).aggregate(**aggregates)
    for pk in saved:
        saved[pk] = row.get(f"saved_{pk}")
    return InboxCounts(
        views={v.slug: row[f"view_{v.slug}"] for v in INBOX_VIEWS if v.counted},
        saved=saved,
        changed=row.get("changed"),
    )


def landing_view(*, user: User) -> str:
    """Where the console opens: Mine, or Unassigned when nothing is assigned to the agent."""
    mine = ticket_queryset_for_user(user=user).filter(VIEWS["mine"].condition(user, timezone.now()))
    return "mine" if mine.exists() else "unassigned"


def tag_choices(*, limit: int = 200) -> list[tuple[int, str, str]]:
    """``(pk, name, colour)`` of the tags, by name: the list's tag filter and the ticket page's suggestions."""
    return list(Tag.objects.order_by("name").values_list("pk", "name", "colour")[:limit])
