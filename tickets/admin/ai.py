"""The AI's records in the console: the AI panel on a ticket, and the runs, drafts and triage models,
read-only (they are evidence), each scoped to the tickets the user may see."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tickets import selectors, services
from tickets.models import AIDraft, AIRun, Ticket, TriageModel
from tickets.roles import user_is_manager

AI_PANEL = "admin/tickets/ticket/ai_panel.html"


def llm_status() -> str:
    """One line for agents: which provider answers and whether the circuit breaker is open."""
    try:
        from supportflow import llm

        provider = llm.provider_for("reply")
        if provider != "openai":
            return gettext("Provider: local (no external LLM configured).")
        state = llm.breaker.status().get("state", "closed")
    except Exception:  # the panel must render even if the LLM module or Redis is unwell
        return gettext("Provider status unavailable.")
    if state == "closed":
        return gettext("Provider: openai-compatible endpoint (healthy).")
    return gettext("Provider: openai-compatible endpoint — circuit breaker %(state)s: the local provider answers.") % {
        "state": state.replace("_", "-")
    }


def ai_panel_context(user, ticket: Ticket) -> dict:
    draft = ticket.ai_drafts.filter(status=AIDraft.Status.PENDING).order_by("-created_at").first()
    return {
        "ticket": ticket,
        "draft": draft,
        "llm_status": llm_status(),
        "can_reply": ticket.status != Ticket.Status.CLOSED
        and user is not None
        and user.has_perm("tickets.add_message"),
    }


class ReadOnlyAdmin(admin.ModelAdmin):
    """AI records are evidence: nobody edits them in the console."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AIRun)
class AIRunAdmin(ReadOnlyAdmin):
    """AI records are evidence: read-only for everyone."""

    list_display = (
        "created_at",
        "kind",
        "provider",
        "model",
        "status",
        "tokens_in",
        "tokens_out",
        "cost",
        "latency_ms",
        "ticket",
    )
    list_filter = ("kind", "provider", "status")
    list_select_related = ("ticket",)
    search_fields = ("=ticket__reference", "key")

    def get_queryset(self, request):
        visible = selectors.ticket_queryset_for_user(user=request.user)
        return super().get_queryset(request).filter(ticket__in=visible.values("pk"))


@admin.register(AIDraft)
class AIDraftAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "ticket", "status", "confidence", "provider", "model", "used_by")
    list_filter = ("status", "provider")
    list_select_related = ("ticket", "used_by")
    search_fields = ("=ticket__reference",)
    exclude = ("gate",)
    readonly_fields = ("gate_display",)

    def get_queryset(self, request):
        visible = selectors.ticket_queryset_for_user(user=request.user)
        return super().get_queryset(request).filter(ticket__in=visible.values("pk"))

    @admin.display(description=_("Gate"))
    def gate_display(self, draft: AIDraft) -> str:
        return format_html("<pre>{}</pre>", json.dumps(draft.gate, indent=2, ensure_ascii=False))


@admin.register(TriageModel)
class TriageModelAdmin(ReadOnlyAdmin):
    """The registry: every version with the held-out figures that decided it. Managers (and superusers)
    promote a version or roll back to the previous one with one button (a POST with the CSRF token);
    the rows themselves stay read-only evidence."""

    list_display = ("version", "status", "figures", "reason", "evaluated_at", "trained_on", "created_at")
    list_filter = ("status",)
    exclude = ("weights",)
    change_list_template = "admin/tickets/triagemodel/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).defer("weights")

    def get_list_display(self, request):
        display = super().get_list_display(request)
        return (*display, "version_actions") if user_is_manager(request.user) else display

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/promote/", view(self.promote_view), name="tickets_triagemodel_promote"),
            path("rollback/", view(self.rollback_view), name="tickets_triagemodel_rollback"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "can_manage_versions": user_is_manager(request.user),
            "promotion_margin": settings.TRIAGE_PROMOTION_MARGIN,
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    @admin.display(description=_("Held-out macro-F1 (vs active)"))
    def figures(self, row: TriageModel) -> str:
        mine, theirs = row.evaluation.get("candidate") or {}, row.evaluation.get("active") or {}
        if not mine:
            return "—"
        versus = row.evaluation.get("active_version")
        lines = [
            (
                name,
                f"{mine[name]['macro_f1']:.3f}",
                f" (v{versus}: {theirs[name]['macro_f1']:.3f})" if name in theirs else "",
            )
            for name in ("category", "department", "priority")
            if name in mine
        ]
        return format_html_join(mark_safe("<br>"), "{}: {}{}", lines)

    @admin.display(description=_("Actions"))
    def version_actions(self, row: TriageModel) -> str:
        if row.is_active:
            return ""
        return format_html(
            '<button type="submit" form="triage-version-action" formaction="{}" class="button" '
            'data-triage-promote="{}">{}</button>',
            reverse("admin:tickets_triagemodel_promote", args=[row.pk]),
            row.version,
            gettext("Promote"),
        )

    def _version_action(self, request: HttpRequest, action) -> HttpResponse:
        if not user_is_manager(request.user):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            row = action()
        except services.TicketRuleError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request, gettext("Triage model v%(version)s is active.") % {"version": row.version}, messages.SUCCESS
            )
        return redirect("admin:tickets_triagemodel_changelist")

    def promote_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._version_action(request, lambda: services.triage_model_promote(user=request.user, version_id=pk))

    def rollback_view(self, request: HttpRequest) -> HttpResponse:
        return self._version_action(request, lambda: services.triage_model_rollback(user=request.user))
