"""The ticket queue and the ticket page of the agent console. Lists and pages are scoped by
``tickets.selectors``; every change — reply, note, assignment, escalation, status, triage correction —
goes through ``tickets.services``."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.timesince import timeuntil
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tickets import selectors, services
from tickets.admin import ticket_page
from tickets.admin.ai import AI_PANEL, ai_panel_context
from tickets.admin.inbox import InboxAdminMixin
from tickets.admin.macros import macro_chips, macro_render_view, reply_macros
from tickets.admin.queue_parts import (
    PRIORITY_COLOURS,
    STATUS_COLOURS,
    AIRunInline,
    AssigneeFilter,
    SLABreachedFilter,
    TicketEventInline,
    colour_badge,
)
from tickets.admin.workflows import ConsoleWorkflowsMixin
from tickets.forms import AgentReplyForm, EscalateForm
from tickets.models import (
    AIDraft,
    Ticket,
)

Status = Ticket.Status


SLA_FIELDS = (
    "first_response_due_at",
    "first_response_at",
    "resolution_due_at",
    "resolved_at",
    "closed_at",
    "reopen_count",
)


@admin.register(Ticket)
class TicketAdmin(InboxAdminMixin, ConsoleWorkflowsMixin, admin.ModelAdmin):
    list_display = (
        "reference",
        "subject_and_tags",
        "customer_name",
        "status_badge",
        "priority_badge",
        "department",
        "assignee",
        "sla_state",
        "updated",
    )
    list_display_links = ("reference", "subject_and_tags")
    list_filter = (
        "status",
        "priority",
        "department",
        AssigneeFilter,
        "escalated",
        SLABreachedFilter,
        "channel",
    )
    search_fields = ("=reference", "subject", "customer__email", "customer__name")
    list_select_related = ("customer", "department", "assignee")
    list_per_page = 50
    ordering = ("-updated_at",)
    date_hierarchy = "created_at"
    actions = ("assign_to_me", "assign_to", "escalate", "resolve", "close", "reopen", "set_priority", "merge_two")
    inlines = (TicketEventInline, AIRunInline)
    fieldsets = (
        (_("Ticket"), {"fields": ("reference", "subject", "customer", "channel", "status", "assignee", "created_at")}),
        # Edited in the ticket page's side column (``sf-triage-fields``: not repeated under "Details").
        (
            _("Triage"),
            {
                "fields": ("category", "priority", "department", "sentiment", "language"),
                "classes": ("sf-triage-fields",),
            },
        ),
        (
            _("AI and escalation"),
            {"fields": ("needs_human", "ai_summary", "escalated", "escalation_reason", "escalated_at")},
        ),
        (
            _("SLA"),
            {"fields": SLA_FIELDS},
        ),
        (_("Outcome"), {"fields": ("csat_score", "csat_comment", "ai_cost")}),
    )
    triage_fields = ("category", "priority", "department", "sentiment", "language")
    readonly_fields = (
        "reference",
        "subject",
        "customer",
        "channel",
        "status",
        "assignee",
        "created_at",
        "needs_human",
        "ai_summary",
        "escalated",
        "escalation_reason",
        "escalated_at",
        *SLA_FIELDS,
        "csat_score",
        "csat_comment",
        "ai_cost",
    )

    class Media:
        css = {"all": ["supportflow/admin.css"]}

    # --- scoping and permissions

    def get_queryset(self, request: HttpRequest):
        return selectors.ticket_queryset_for_user(user=request.user)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    # --- list columns

    @admin.display(description=_("Customer"), ordering="customer__name")
    def customer_name(self, ticket: Ticket) -> str:
        return ticket.customer.name or ticket.customer.email or "—"

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, ticket: Ticket) -> str:
        badge = colour_badge(ticket.get_status_display().split(" (")[0], STATUS_COLOURS.get(ticket.status, "#4b5563"))
        if ticket.escalated:
            return format_html("{} {}", badge, colour_badge(gettext("Escalated"), "#b91c1c"))
        return badge

    @admin.display(description=_("Priority"), ordering="priority")
    def priority_badge(self, ticket: Ticket) -> str:
        return colour_badge(ticket.get_priority_display(), PRIORITY_COLOURS.get(ticket.priority, "#4b5563"))

    @admin.display(description=_("SLA"))
    def sla_state(self, ticket: Ticket) -> str:
        now = timezone.now()
        if ticket.first_response_breached or ticket.resolution_breached:
            return format_html('<span class="sf-sla sf-sla-breached">{}</span>', gettext("Breached"))
        if not ticket.is_active:
            return "—"
        if ticket.first_response_at is None and ticket.first_response_due_at:
            due, overdue, due_in = ticket.first_response_due_at, gettext("Reply overdue"), gettext("Reply in %(t)s")
        elif ticket.sla_paused_at is not None:
            return format_html('<span class="sf-sla">{}</span>', gettext("Paused"))
        elif ticket.resolution_due_at:
            due, overdue, due_in = ticket.resolution_due_at, gettext("Resolve overdue"), gettext("Resolve in %(t)s")
        else:
            return "—"
        if due <= now:
            return format_html('<span class="sf-sla sf-sla-breached">{}</span>', overdue)
        css = "sf-sla sf-sla-soon" if (due - now).total_seconds() < 3600 else "sf-sla"
        return format_html('<span class="{}">{}</span>', css, due_in % {"t": timeuntil(due, now, depth=1)})

    # --- actions (each ticket through the services; failures reported, never half-applied)

    def _apply(self, request: HttpRequest, queryset, verb: str, fn) -> None:
        self.bulk_apply(request, queryset, verb, fn)

    @admin.action(description=_("Assign to me"), permissions=["change"])
    def assign_to_me(self, request, queryset):
        self._apply(
            request,
            queryset,
            gettext("Assigned to you"),
            lambda t: services.ticket_assign(ticket=t, assignee=request.user, actor=request.user),
        )

    @admin.action(description=_("Escalate"), permissions=["change"])
    def escalate(self, request, queryset):
        reason = f"Escalated from the queue by {request.user.get_username()}"
        self._apply(
            request,
            queryset,
            gettext("Escalated"),
            lambda t: services.ticket_escalate(ticket=t, reason=reason, actor=request.user),
        )

    @admin.action(description=_("Resolve"), permissions=["change"])
    def resolve(self, request, queryset):
        self._apply(
            request, queryset, gettext("Resolved"), lambda t: services.ticket_resolve(ticket=t, actor=request.user)
        )

    @admin.action(description=_("Close"), permissions=["change"])
    def close(self, request, queryset):
        self._apply(request, queryset, gettext("Closed"), lambda t: services.ticket_close(ticket=t, actor=request.user))

    @admin.action(description=_("Reopen"), permissions=["change"])
    def reopen(self, request, queryset):
        self._apply(
            request, queryset, gettext("Reopened"), lambda t: services.ticket_reopen(ticket=t, actor=request.user)
        )

    # --- the queue: a cheap poll tells an open list that conversations changed

    def get_urls(self):
        custom = [
            path(
                "changes/",
                self.admin_site.admin_view(self.queue_changes_view),
                name="tickets_ticket_changes",
            ),
            path(
                "<int:ticket_id>/passages/",
                self.admin_site.admin_view(self.passages_view),
                name="tickets_ticket_passages",
            ),
            path(
                "<int:ticket_id>/ai/",
                self.admin_site.admin_view(self.ai_view),
                name="tickets_ticket_ai",
            ),
            path(
                "<int:ticket_id>/macros/<int:macro_id>/",
                self.admin_site.admin_view(macro_render_view),
                name="tickets_ticket_macro",
            ),
        ]
        return custom + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "queue_loaded_at": timezone.now().isoformat()}
        return super().changelist_view(request, extra_context)

    def queue_changes_view(self, request: HttpRequest) -> HttpResponse:
        """How many visible tickets changed since the list was loaded, and every inbox view's count
        (one query for all: ``inbox_live_context``).

        Polling rather than a websocket push: it reuses the exact scoping of the list, costs one
        query per open list every 10 s, and cannot miss an update the way a dropped push can.
        """
        if not self.has_view_permission(request):
            return HttpResponse(gettext("You may not view tickets."), status=403)
        since = parse_datetime(request.GET.get("since", "")) or timezone.now()
        if timezone.is_naive(since):
            since = timezone.make_aware(since, dt.UTC)
        poll_url = reverse("admin:tickets_ticket_changes") + "?" + urlencode({"since": since.isoformat()})
        context = {**self.inbox_live_context(request, changed_since=since), "poll_url": poll_url}
        return TemplateResponse(request, "admin/tickets/ticket/queue_updates.html", context)

    def passages_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        """Knowledge-base articles most relevant to the conversation (its last customer turns), one entry
        per article with its best passage; loaded after the page, so the console never waits for the
        embedding model."""
        from knowledge.selectors import kb_search

        ticket = selectors.ticket_get_for_user(user=request.user, pk=ticket_id)
        turns = list(ticket.messages.filter(author_kind="customer").order_by("-seq").values_list("body", flat=True)[:3])
        query = " ".join(reversed(turns)) or ticket.subject
        hits = kb_search(query, k=15, language=ticket.language or "en")
        articles = ticket_page.articles_from_hits(hits, limit=5)
        return TemplateResponse(request, "admin/tickets/ticket/passages.html", {"articles": articles})

    def ai_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        """The AI panel: triage with confidences and the waiting draft; POST uses, edits or discards it."""
        ticket = selectors.ticket_get_for_user(user=request.user, pk=ticket_id)
        context: dict = {}
        if request.method == "POST":
            if not (self.has_change_permission(request, ticket) and request.user.has_perm("tickets.add_message")):
                return HttpResponse(gettext("You may not reply to this ticket."), status=403)
            draft = get_object_or_404(AIDraft, pk=request.POST.get("draft") or 0, ticket=ticket)
            action = request.POST.get("action")
            if action == "edit":
                form = AgentReplyForm(initial={"body": draft.body, "draft": draft.pk})
                return TemplateResponse(
                    request,
                    "admin/tickets/ticket/reply_form.html",
                    {"reply_form": form, "original": ticket, "request": request},
                )
            try:
                if action == "use":
                    services.ai_draft_use(draft=draft, actor=request.user)
                    context["note"] = gettext("Draft sent to the customer.")
                elif action == "discard":
                    services.ai_draft_discard(draft=draft, actor=request.user)
                    context["note"] = gettext("Draft discarded.")
                else:
                    return HttpResponse(gettext("Unknown action; use, edit or discard."), status=400)
            except services.TicketRuleError as exc:
                context["error"] = str(exc)
            ticket.refresh_from_db()
        return TemplateResponse(request, AI_PANEL, {**ai_panel_context(request.user, ticket), **context})

    # --- the ticket page

    def save_model(self, request, obj: Ticket, form, change: bool) -> None:
        """Triage corrections go through the service, which writes one event per changed field."""
        changes = {name: form.cleaned_data[name] for name in self.triage_fields if name in form.changed_data}
        if changes:
            try:
                services.ticket_update_triage(ticket=obj, actor=request.user, **changes)
            except services.TicketRuleError as exc:
                self.message_user(request, str(exc), messages.ERROR)

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        """The triage fields sit in the page's side column, outside the admin's <form>: the HTML ``form``
        attribute keeps them part of it."""
        form = super().get_form(request, obj, change, **kwargs)
        for name in self.triage_fields:
            if name in form.base_fields:
                widget = form.base_fields[name].widget
                widget.attrs["form"] = f"{self.opts.model_name}_form"
                if isinstance(widget, RelatedFieldWidgetWrapper):  # no add/change/view links in the side column
                    widget.can_add_related = widget.can_change_related = widget.can_view_related = False
                    widget.can_delete_related = False
        return form

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        if request.method == "GET" and (merged := self.merged_ticket_redirect(request, object_id)) is not None:
            return merged
        extra_context = extra_context or {}
        if request.method == "POST" and ("_reply" in request.POST or "_ticket_action" in request.POST):
            ticket = selectors.ticket_get_for_user(user=request.user, pk=object_id)
            if not self.has_change_permission(request, ticket):
                return HttpResponse(gettext("You may not change this ticket."), status=403)
            if "_reply" in request.POST:
                reply_form = AgentReplyForm(request.POST)
                response = self._reply(request, ticket, reply_form)
                if request.headers.get("HX-Request") == "true":
                    return self._reply_fragment(request, ticket, reply_form, sent=response is not None)
                if response is not None:
                    return response
                extra_context["reply_form"] = reply_form
                extra_context["reply_chips"] = self._chips(request, ticket, reply_form)
            else:
                return self._ticket_action(request, ticket, request.POST["_ticket_action"])
            request.method = "GET"  # show the page again with the reply box and its errors
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context.setdefault("reply_form", AgentReplyForm(initial={"last_seen_seq": obj.last_message_seq}))
            extra_context.update(ticket_page.page_context(self, request, obj))
        return super().change_view(request, object_id, form_url, extra_context)

    def _back(self, request: HttpRequest, ticket: Ticket) -> HttpResponseRedirect:
        """Back to the ticket page after one of its own POSTs, keeping the list it came from (and the
        previous/next tickets it showed) for ``j``/``k``."""
        filters = request.GET.get(ticket_page.FILTERS_PARAM, "")
        carried = ticket_page.carried_neighbours(user=request.user, raw=request.POST.get(ticket_page.NAV_PARAM, ""))
        return HttpResponseRedirect(ticket_page.page_url(ticket.pk, filters, carried))

    def _chips(self, request: HttpRequest, ticket: Ticket, form: AgentReplyForm) -> list[dict]:
        ids = form.cleaned_data.get("macros") if hasattr(form, "cleaned_data") else None
        macros = reply_macros(user=request.user, ticket=ticket, ids=ids or []) or []
        return macro_chips(macros=macros)

    def _reply_fragment(self, request: HttpRequest, ticket: Ticket, form: AgentReplyForm, *, sent: bool):
        """The reply box alone (htmx): cleared after a send — the message itself arrives over the
        websocket like everyone else's — or with its errors, the agent's text and macros kept."""
        chips = [] if sent else self._chips(request, ticket, form)
        if sent:
            internal = form.cleaned_data["is_internal"]
            seen = form.cleaned_data["last_seen_seq"]
            form = AgentReplyForm(initial={"last_seen_seq": seen})
            note = gettext("Internal note added.") if internal else gettext("Reply sent.")
        else:
            note = ""
        context = {"reply_form": form, "original": ticket, "reply_sent": note, "request": request, "reply_chips": chips}
        return TemplateResponse(request, "admin/tickets/ticket/reply_form.html", context)

    def _reply(self, request: HttpRequest, ticket: Ticket, form: AgentReplyForm) -> HttpResponse | None:
        if not request.user.has_perm("tickets.add_message"):
            return HttpResponse(gettext("You may not reply to tickets."), status=403)
        if not form.is_valid():
            return None
        draft_id = form.cleaned_data.get("draft")
        draft = get_object_or_404(AIDraft, pk=draft_id, ticket=ticket) if draft_id else None
        macros = reply_macros(user=request.user, ticket=ticket, ids=form.cleaned_data["macros"])
        if macros is None:
            form.add_error(
                None, gettext("A macro in this reply is no longer available to you: remove it and send again.")
            )
            return None
        try:
            services.agent_reply_send(
                ticket=ticket,
                actor=request.user,
                body=form.cleaned_data["body"],
                is_internal=form.cleaned_data["is_internal"],
                set_status=form.cleaned_data["then_status"] or None,
                draft=draft,
                seen_through=form.seen_through(),
                macros=macros,
            )
        except services.ReplyConflict as conflict:  # nothing sent: the form shows what was added
            form.conflict = conflict
            return None
        except services.TicketRuleError as exc:
            form.add_error(None, str(exc))
            return None
        if request.headers.get("HX-Request") != "true":
            if form.cleaned_data["is_internal"]:
                note = gettext("Internal note added on %(ref)s.") % {"ref": ticket.reference}
            else:
                note = gettext("Reply sent on %(ref)s.") % {"ref": ticket.reference}
            self.message_user(request, note, messages.SUCCESS)
        return self._back(request, ticket)

    def _ticket_action(self, request: HttpRequest, ticket: Ticket, action: str) -> HttpResponse:
        user = request.user
        handlers = {
            "assign_me": lambda: services.ticket_assign(ticket=ticket, assignee=user, actor=user),
            "pending": lambda: services.ticket_change_status(ticket=ticket, to_status=Status.PENDING, actor=user),
            "resolve": lambda: services.ticket_resolve(ticket=ticket, actor=user),
            "close": lambda: services.ticket_close(ticket=ticket, actor=user),
            "reopen": lambda: services.ticket_reopen(ticket=ticket, actor=user),
        }
        if action == "escalate":
            form = EscalateForm(request.POST)
            if not form.is_valid():
                self.message_user(request, gettext("Say why the ticket is escalated."), messages.ERROR)
                return self._back(request, ticket)
            handlers["escalate"] = lambda: services.ticket_escalate(
                ticket=ticket, reason=form.cleaned_data["reason"], actor=user
            )
        handler = handlers.get(action)
        if handler is None:
            self.message_user(request, gettext("Unknown action %(action)r.") % {"action": action}, messages.ERROR)
            return self._back(request, ticket)
        try:
            handler()
        except services.TicketRuleError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            done = gettext("%(ref)s: done (%(action)s).") % {
                "ref": ticket.reference,
                "action": action.replace("_", " "),
            }
            self.message_user(request, done, messages.SUCCESS)
        return self._back(request, ticket)
