"""The agent's inbox in the console: the ticket list's built-in views (Mine, Unassigned, …) with live counts,
saved views, tags (a list filter, chips in the list, a panel on the ticket page, the tag admin) and where
the console opens.

``InboxAdminMixin`` is mixed into ``TicketAdmin``. Reads come from ``tickets.inbox`` — the same filter
vocabulary counts a view and lists it — and writes go through ``tickets.services.saved_views`` and
``tickets.services.tags``.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from supportflow import ratelimit
from tickets import inbox, selectors
from tickets.models import Department, SavedView, Tag, Ticket
from tickets.roles import user_is_agent, user_is_manager, user_roles_preload
from tickets.services import saved_views as saved_view_services
from tickets.services import tags as tag_services
from tickets.services.common import TicketRuleError

TAGS_TEMPLATE = "admin/tickets/ticket/tags.html"
TAG_CHIP = '<span class="sf-tag"><span class="sf-tag-dot" style="background:{}"></span>{}</span>'
TAG_CHANGES = ratelimit.Limit(60, 60)  # per agent: a burst of tagging is fine, a loop is not
VIEW_CHANGES = ratelimit.Limit(60, 3600)


# --- the list: built-in views and tags as list filters ---------------------------------------------------


class InboxViewFilter(admin.SimpleListFilter):
    """The built-in views (``?view=mine``), shown as the views column rather than in the filter panel.
    Without a view or a status filter, the list leaves closed tickets out."""

    title = gettext_lazy("view")
    parameter_name = inbox.VIEW
    template = "admin/tickets/ticket/filter_hidden.html"

    def lookups(self, request, model_admin):
        return [(view.slug, view.label) for view in inbox.INBOX_VIEWS]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset.exclude(status=Ticket.Status.CLOSED) if inbox.hides_closed(request.GET) else queryset
        view = inbox.VIEWS.get(value)
        if view is None:
            raise IncorrectLookupParameters(value)
        return queryset.filter(view.condition(request.user, timezone.now()))


class TagFilter(admin.SimpleListFilter):
    title = gettext_lazy("tag")
    parameter_name = inbox.TAG

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name, _colour in inbox.tag_choices()]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        try:
            tag_id = int(inbox.FILTERS[inbox.TAG].clean(self.value()))
        except inbox.FilterError as exc:
            raise IncorrectLookupParameters(str(exc)) from exc
        return queryset.filter(inbox.tag_q(tag_id))


class InboxChangeList(ChangeList):
    """The rows come with their tags (one query for the page, whatever its length)."""

    def get_queryset(self, request, exclude_parameters=None):
        tags = Prefetch("tags", queryset=Tag.objects.order_by("name"))
        return super().get_queryset(request, exclude_parameters).prefetch_related(tags)


@dataclasses.dataclass(frozen=True)
class InboxItem:
    """One entry of the views column: a built-in view (``view`` is None) or a saved view."""

    key: str
    label: str
    query: str
    count: int | None
    counted: bool = True
    selected: bool = False
    view: SavedView | None = None
    can_change: bool = False


def inbox_items(
    *, user, saved: list[SavedView], counts: inbox.InboxCounts, current: str | None = None, current_view: str = ""
) -> tuple[list[InboxItem], list[InboxItem]]:
    """The built-in and the saved entries, with their counts; ``current`` (the list's canonical filters)
    selects the saved view it equals, else ``current_view`` the built-in one."""
    saved_items = []
    for view in saved:
        try:
            query = inbox.view_query_clean(view.query)
        except inbox.FilterError:
            query = ""
        saved_items.append(
            InboxItem(
                key=f"saved-{view.pk}",
                label=view.name,
                query=query,
                count=counts.saved.get(view.pk),
                selected=bool(query) and query == current,
                view=view,
                can_change=inbox.saved_view_can_change(view=view, user=user),
            )
        )
    chosen = "" if any(item.selected for item in saved_items) else current_view
    view_items = [
        InboxItem(
            key=view.slug,
            label=view.label,
            query=urlencode({inbox.VIEW: view.slug}),
            count=counts.views.get(view.slug),
            counted=view.counted,
            selected=view.slug == chosen,
        )
        for view in inbox.INBOX_VIEWS
    ]
    return view_items, saved_items


# --- the ticket admin's part ---------------------------------------------------------------------------


class InboxAdminMixin:
    """Mixed into ``TicketAdmin``: the views column, saved views and tags on the list; the tags panel's
    endpoint; the list opening on Mine (or Unassigned). The search box matches ``inbox.SEARCH_LOOKUPS``,
    the same condition a saved view with a search counts with."""

    def get_list_filter(self, request):
        return (InboxViewFilter, *super().get_list_filter(request), TagFilter)

    def get_changelist(self, request, **kwargs):
        return InboxChangeList

    def get_search_results(self, request, queryset, search_term):
        term = " ".join(search_term.split())
        return (queryset.filter(inbox.search_q(term)) if term else queryset), False

    @admin.display(description=gettext_lazy("Subject"), ordering="subject")
    def subject_and_tags(self, ticket: Ticket) -> str:
        subject = ticket.subject if len(ticket.subject) <= 60 else ticket.subject[:59] + "…"
        chips = format_html_join("", TAG_CHIP, ((tag.colour, tag.name) for tag in ticket.tags.all()))
        if not chips:
            return subject
        return format_html('{} <span class="sf-tag-chips">{}</span>', subject, chips)

    @admin.display(description=gettext_lazy("Updated"), ordering="updated_at")
    def updated(self, ticket: Ticket) -> str:
        """Today's changes by their time, older ones by their date: narrow enough for a 1400 px list."""
        local = timezone.localtime(ticket.updated_at)
        if local.date() == timezone.localdate():
            shown = formats.time_format(local, "TIME_FORMAT")
        else:
            shown = formats.date_format(local, "SHORT_DATE_FORMAT")
        full = formats.localize(local)
        return format_html('<time datetime="{}" title="{}">{}</time>', local.isoformat(), full, shown)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("views/save/", wrap(self.saved_view_create_view), name="tickets_ticket_view_save"),
            path("views/<int:view_id>/", wrap(self.saved_view_change_view), name="tickets_ticket_view_change"),
            path("<int:ticket_id>/tags/", wrap(self.tags_view), name="tickets_ticket_tags"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        user_roles_preload(user=request.user)  # groups and permissions in one query, for every check of the page
        if not self.has_view_permission(request):
            return super().changelist_view(request, extra_context)  # the admin's refusal
        if request.method == "GET" and not request.GET:
            landing = urlencode({inbox.VIEW: inbox.landing_view(user=request.user)})
            return HttpResponseRedirect(f"{request.path}?{landing}")
        extra_context = {**(extra_context or {}), "inbox": self._inbox_context(request)}
        return super().changelist_view(request, extra_context)

    def _inbox_context(self, request: HttpRequest) -> dict:
        user = request.user
        saved = inbox.saved_views_for_user(user=user)
        counts = inbox.inbox_counts(user=user, saved_views=saved)
        try:
            current, problem = inbox.view_query_clean(request.GET), ""
        except inbox.FilterError as exc:
            current, problem = None, str(exc)
        views, saved_items = inbox_items(
            user=user, saved=saved, counts=counts, current=current, current_view=request.GET.get(inbox.VIEW, "")
        )
        manager = user_is_manager(user)
        return {
            "views": views,
            "saved": saved_items,
            "current_query": current,
            "can_save": current is not None and inbox.query_has_filters(current) and user_is_agent(user),
            "save_problem": problem,
            "departments": list(Department.objects.order_by("name").only("pk", "name")) if manager else [],
        }

    def inbox_live_context(self, request: HttpRequest, *, changed_since) -> dict:
        """For the list's poll: how many visible tickets changed since it loaded, and every view's count
        (swapped into the views column out of band) — one query for all of them."""
        user_roles_preload(user=request.user)
        saved = inbox.saved_views_for_user(user=request.user)
        counts = inbox.inbox_counts(user=request.user, saved_views=saved, changed_since=changed_since)
        views, saved_items = inbox_items(user=request.user, saved=saved, counts=counts)
        return {"count": counts.changed, "inbox_counts": [*views, *saved_items]}

    # --- saved views: save, rename, share, delete (POST, CSRF-checked by admin_view)

    def saved_view_create_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            return HttpResponse(_("You may not view tickets."), status=403)
        if refusal := _rate_limited(request, "saved-views", VIEW_CHANGES):
            return refusal
        query = request.POST.get("query", "")
        try:
            view = saved_view_services.saved_view_create(
                owner=request.user,
                name=request.POST.get("name", ""),
                query=query,
                department=_department(request.POST.get("department", "")),
            )
        except TicketRuleError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return _to_list(QueryDict(query[: saved_view_services.QUERY_MAX_LENGTH]).urlencode())
        self.message_user(request, _("View “%(name)s” saved.") % {"name": view.name}, messages.SUCCESS)
        return _to_list(view.query)

    def saved_view_change_view(self, request: HttpRequest, view_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        view = inbox.saved_view_get_for_user(user=request.user, pk=view_id)
        if not (self.has_view_permission(request) and inbox.saved_view_can_change(view=view, user=request.user)):
            return HttpResponse(_("You may not change this view."), status=403)
        if refusal := _rate_limited(request, "saved-views", VIEW_CHANGES):
            return refusal
        action, user = request.POST.get("action"), request.user
        try:
            if action == "rename":
                saved_view_services.saved_view_rename(view=view, name=request.POST.get("name", ""), actor=user)
                note = _("View renamed to “%(name)s”.") % {"name": view.name}
            elif action == "share":
                department = _department(request.POST.get("department", ""))
                saved_view_services.saved_view_share(view=view, department=department, actor=user)
                note = (
                    _("“%(name)s” is shared with %(team)s.") % {"name": view.name, "team": department.name}
                    if department
                    else _("“%(name)s” is personal now.") % {"name": view.name}
                )
            elif action == "delete":
                saved_view_services.saved_view_delete(view=view, actor=user)
                self.message_user(request, _("View “%(name)s” deleted.") % {"name": view.name}, messages.SUCCESS)
                return _to_list("")
            else:
                return HttpResponse(_("Unknown action; use rename, share or delete."), status=400)
        except TicketRuleError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, note, messages.SUCCESS)
        return _to_list(view.query)

    # --- tags on one ticket: the panel (GET) and its changes (POST)

    def tags_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        """The ticket page's tags panel. POST ``action=add&name=…`` or ``action=remove&tag=<id>``: htmx gets
        the panel again (with the error, if any), a plain form post goes back to the ticket page."""
        ticket = selectors.ticket_get_for_user(user=request.user, pk=ticket_id)
        context: dict = {"original": ticket}
        if request.method == "POST":
            if not self.has_change_permission(request, ticket):
                return HttpResponse(_("You may not change this ticket."), status=403)
            if refusal := _rate_limited(request, "ticket-tags", TAG_CHANGES):
                return refusal
            action = request.POST.get("action")
            if action not in ("add", "remove"):
                return HttpResponse(_("Unknown action; use add or remove."), status=400)
            try:
                _tags_change(ticket, action, request)
            except TicketRuleError as exc:
                context["tags_error"] = str(exc)
            if request.headers.get("HX-Request") != "true":
                if "tags_error" in context:
                    self.message_user(request, context["tags_error"], messages.ERROR)
                return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
        elif request.method != "GET":
            return HttpResponseNotAllowed(["GET", "POST"])
        return TemplateResponse(request, TAGS_TEMPLATE, context)


def _tags_change(ticket: Ticket, action: str, request: HttpRequest) -> None:
    if action == "add":
        tag_services.ticket_tag_add(ticket=ticket, name=request.POST.get("name", ""), actor=request.user)
        return
    tag_id = request.POST.get("tag", "")
    tag = Tag.objects.filter(pk=int(tag_id)).first() if tag_id.isascii() and tag_id.isdigit() else None
    if tag is None:
        raise TicketRuleError(_("No such tag."))
    tag_services.ticket_tag_remove(ticket=ticket, tag=tag, actor=request.user)


def _department(value: str) -> Department | None:
    if not value:
        return None
    department = Department.objects.filter(pk=int(value)).first() if value.isascii() and value.isdigit() else None
    if department is None:
        raise TicketRuleError(_("No such team."))
    return department


def _to_list(query: str) -> HttpResponseRedirect:
    url = reverse("admin:tickets_ticket_changelist")
    return HttpResponseRedirect(f"{url}?{query}" if query else url)


def _rate_limited(request: HttpRequest, scope: str, limit: ratelimit.Limit) -> HttpResponse | None:
    verdict = ratelimit.hit(scope, str(request.user.pk), limit)
    if verdict.allowed:
        return None
    response = HttpResponse(
        _("Too many changes; try again in %(seconds)d seconds.") % {"seconds": verdict.retry_after}, status=429
    )
    response["Retry-After"] = str(verdict.retry_after)
    return response


# --- where the console opens ---------------------------------------------------------------------------


def console_home(request: HttpRequest) -> HttpResponse:
    """``/admin/``: an agent lands in their inbox (the list then opens on Mine, or Unassigned); managers and
    superusers, who also configure queues, SLAs and agents, keep the index."""
    user = request.user
    if user_is_agent(user) and not user_is_manager(user) and user.has_perm("tickets.view_ticket"):
        return HttpResponseRedirect(reverse("admin:tickets_ticket_changelist"))
    return admin.site.index(request)


# --- the tags themselves: managers rename, recolour and delete them -------------------------------------


class TagForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ("name", "colour")
        widgets = {"colour": forms.TextInput(attrs={"type": "color"})}

    def clean_name(self) -> str:
        try:
            return tag_services.tag_name_clean(self.cleaned_data["name"])
        except TicketRuleError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    form = TagForm
    list_display = ("chip", "name", "colour", "tickets_link")
    list_display_links = ("name",)
    search_fields = ("name",)
    ordering = ("name",)

    class Media:
        css = {"all": ["supportflow/admin.css"]}

    @admin.display(description=gettext_lazy("Chip"))
    def chip(self, tag: Tag) -> str:
        return format_html(TAG_CHIP, tag.colour, tag.name)

    @admin.display(description=gettext_lazy("Tickets"))
    def tickets_link(self, tag: Tag) -> str:
        url = reverse("admin:tickets_ticket_changelist") + "?" + urlencode({inbox.VIEW: "all", inbox.TAG: tag.pk})
        return format_html('<a href="{}">{}</a>', url, _("Tickets with this tag"))

    def save_model(self, request, obj: Tag, form, change: bool) -> None:
        try:
            tag_services.tag_save(tag=obj, name=form.cleaned_data["name"], colour=form.cleaned_data["colour"])
        except TicketRuleError as exc:  # a same-named tag saved meanwhile: the form had checked the name
            self.message_user(request, str(exc), messages.ERROR)

    def delete_model(self, request, obj: Tag) -> None:
        tag_services.tag_delete(tag=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for tag in queryset:
            tag_services.tag_delete(tag=tag, actor=request.user)
