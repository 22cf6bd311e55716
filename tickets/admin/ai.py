"""The AI's records in the console: the AI panel on a ticket, and the runs, drafts and triage models,
read-only (they are evidence), each scoped to the tickets the user may see."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tickets import selectors
from tickets.models import AIDraft, AIRun, Ticket, TriageModel

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
    list_display = ("version", "is_active", "algorithm", "embedding_model", "trained_on", "metrics", "created_at")
    exclude = ("weights",)
