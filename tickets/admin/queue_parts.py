"""The parts of the ticket queue and page that are not the page itself: the read-only event and AI-run
inlines, the SLA and assignee filters, and the status/priority badges."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from tickets import selectors
from tickets.models import AIRun, TicketEvent


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class TicketEventInline(ReadOnlyInline):
    model = TicketEvent
    verbose_name_plural = _("Audit log")
    fields = ("created_at", "kind", "field", "from_value", "to_value", "actor_display", "note")
    readonly_fields = fields
    ordering = ("created_at", "pk")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description=_("By"))
    def actor_display(self, event: TicketEvent) -> str:
        return event.actor.get_username() if event.actor else event.get_actor_kind_display()


class AIRunInline(ReadOnlyInline):
    model = AIRun
    verbose_name_plural = _("AI runs")
    fields = (
        "created_at",
        "kind",
        "provider",
        "model",
        "prompt_version",
        "status",
        "tokens_in",
        "tokens_out",
        "cost",
        "latency_ms",
        "error",
    )
    readonly_fields = fields


class SLABreachedFilter(admin.SimpleListFilter):
    title = _("SLA")
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [("breached", _("Breached")), ("ok", _("Within target"))]

    def queryset(self, request, queryset):
        breached = selectors.sla_breached_q(timezone.now())
        if self.value() == "breached":
            return queryset.filter(breached)
        if self.value() == "ok":
            return queryset.exclude(breached)
        return queryset


class AssigneeFilter(admin.SimpleListFilter):
    title = _("assignee")
    parameter_name = "assigned"

    def lookups(self, request, model_admin):
        return [("me", _("Me")), ("none", _("Unassigned")), ("others", _("Someone else"))]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(assignee=request.user)
        if self.value() == "none":
            return queryset.filter(assignee__isnull=True)
        if self.value() == "others":
            return queryset.exclude(assignee__isnull=True).exclude(assignee=request.user)
        return queryset


# White text on these is at least 4.5:1 (WCAG AA for the 11px badge text, checked by test_axe_browser).
PRIORITY_COLOURS = {"low": "#4b5563", "normal": "#1d4ed8", "high": "#b45309", "urgent": "#b91c1c"}
STATUS_COLOURS = {
    "new": "#6d28d9",
    "open": "#1d4ed8",
    "pending": "#b45309",
    "resolved": "#047857",
    "closed": "#4b5563",
}


def colour_badge(text: str, colour: str) -> str:
    return format_html('<span class="sf-badge" style="background:{}">{}</span>', colour, text)
