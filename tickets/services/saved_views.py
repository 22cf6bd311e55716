"""Saved views of the ticket list: save the current filters under a name, rename, share, delete.

A view is personal unless a manager shares it with a team (a department): that team's agents then see it
beside the built-in views. Its filters are checked against the list's vocabulary (``tickets.inbox``)
before they are stored, so a stored view is never an arbitrary lookup.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext as _

from tickets import inbox
from tickets.models import Department, SavedView
from tickets.roles import user_is_agent, user_is_manager
from tickets.services.common import TicketRuleError
from tickets.services.names import name_clean, save_named

NAME_MAX_LENGTH = 60
QUERY_MAX_LENGTH = 500
PERSONAL_VIEWS_MAX = 30
SHARED_VIEWS_PER_TEAM_MAX = 20


def _name_clean(name: str) -> str:
    return name_clean(
        name,
        max_length=NAME_MAX_LENGTH,
        empty=_("Give the view a name."),
        too_long=_("A view's name has at most %(max)d characters."),
    )


def _query_clean(query: str) -> str:
    if len(query) > QUERY_MAX_LENGTH:
        raise TicketRuleError(_("These filters are too long to save."))
    try:
        query = inbox.view_query_clean(query)
    except inbox.FilterError as exc:
        raise TicketRuleError(str(exc)) from exc
    if not inbox.query_has_filters(query):
        raise TicketRuleError(_("Filter the list first: a view without filters is the whole list."))
    return query


def _check_room(*, owner: AbstractBaseUser, department: Department | None, exclude: int | None = None) -> None:
    if department is None:
        taken = SavedView.objects.filter(owner=owner, department__isnull=True)
        limit, message = PERSONAL_VIEWS_MAX, _("You have %(max)d views already; delete one first.")
    else:
        taken = SavedView.objects.filter(department=department)
        limit, message = SHARED_VIEWS_PER_TEAM_MAX, _("This team has %(max)d shared views already; delete one first.")
    if taken.exclude(pk=exclude).count() >= limit:
        raise TicketRuleError(message % {"max": limit})


def _check_share(actor: AbstractBaseUser, department: Department | None) -> None:
    if department is not None and not user_is_manager(actor):
        raise TicketRuleError(_("Only managers share views with a team."))


def _save(view: SavedView) -> SavedView:
    same_name = SavedView.objects.filter(owner_id=view.owner_id, name__iexact=view.name)
    save_named(view, same_name=same_name, taken=_("You already have a view called “%(name)s”.") % {"name": view.name})
    return view


@transaction.atomic
def saved_view_create(
    *, owner: AbstractBaseUser, name: str, query: str, department: Department | None = None
) -> SavedView:
    """Save the list's filters (``query``, its querystring) as ``owner``'s view; shared with ``department``'s
    agents when given (managers only)."""
    if not user_is_agent(owner):
        raise TicketRuleError(_("Only agents save views."))
    _check_share(owner, department)
    view = SavedView(owner=owner, name=_name_clean(name), query=_query_clean(query), department=department)
    _check_room(owner=owner, department=department)
    return _save(view)


def _check_change(view: SavedView, actor: AbstractBaseUser) -> None:
    if not inbox.saved_view_can_change(view=view, user=actor):
        raise TicketRuleError(_("You may not change this view."))


@transaction.atomic
def saved_view_rename(*, view: SavedView, name: str, actor: AbstractBaseUser) -> SavedView:
    _check_change(view, actor)
    view.name = _name_clean(name)
    return _save(view)


@transaction.atomic
def saved_view_share(*, view: SavedView, department: Department | None, actor: AbstractBaseUser) -> SavedView:
    """Share the view with a team (``department``), or make it personal again (``None``): managers only."""
    _check_change(view, actor)
    if not user_is_manager(actor):
        raise TicketRuleError(_("Only managers share views with a team."))
    if (department.pk if department else None) != view.department_id:
        _check_room(owner=view.owner, department=department, exclude=view.pk)
    view.department = department
    return _save(view)


@transaction.atomic
def saved_view_delete(*, view: SavedView, actor: AbstractBaseUser) -> None:
    _check_change(view, actor)
    view.delete()
