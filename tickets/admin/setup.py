"""Set-up in the console: customers, queues (departments) with their SLA policies, escalation rules,
and the agent profile on each staff user."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.urls import reverse
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from knowledge.models import DEFAULT_NAMESPACE
from tickets import selectors
from tickets.models import (
    AgentProfile,
    Customer,
    Department,
    EscalationRule,
    KnowledgeCalibration,
    SLAPolicy,
    SLATarget,
)

User = get_user_model()


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "email", "is_vip", "ticket_count", "created_at")
    list_filter = ("is_vip",)
    search_fields = ("name", "email")
    readonly_fields = ("created_at", "email_unsubscribed_at", "tickets_link")

    def get_queryset(self, request):
        """Customers with a ticket this user may see, like the API's customer list: an agent does not
        read the contact details of another department's customers."""
        from django.db.models import Count

        customers = super().get_queryset(request)
        if not selectors.user_sees_all_departments(request.user):
            customers = customers.filter(
                pk__in=selectors.ticket_queryset_for_user(user=request.user).values("customer_id")
            )
        return customers.annotate(num_tickets=Count("tickets"))

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    @admin.display(description=_("Tickets"), ordering="num_tickets")
    def ticket_count(self, customer: Customer) -> int:
        return customer.num_tickets

    @admin.display(description=_("Tickets"))
    def tickets_link(self, customer: Customer) -> str:
        if not customer.email:
            return "—"
        # every ticket of theirs, closed ones included (the list leaves those out unless asked)
        url = reverse("admin:tickets_ticket_changelist") + "?" + urlencode({"view": "all", "q": customer.email})
        return format_html('<a href="{}">{}</a>', url, gettext("Tickets of %(email)s") % {"email": customer.email})


class SLATargetInline(admin.TabularInline):
    model = SLATarget
    extra = 0


@admin.register(SLAPolicy)
class SLAPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "business_hours_only", "timezone")
    inlines = (SLATargetInline,)


def _calibration() -> KnowledgeCalibration | None:
    return KnowledgeCalibration.objects.filter(namespace=DEFAULT_NAMESPACE).first()


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    """The AI gate's threshold is shown as the gate uses it: the manager's (manual mode) or the one
    calibrated on the knowledge base and raised by customers' "No" votes (automatic mode)."""

    list_display = ("name", "slug", "sla_policy", "is_active", "ai_threshold_mode", "threshold_in_use")
    list_select_related = ("sla_policy",)
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("threshold_in_use", "gate_calibration")

    @admin.display(description=_("AI threshold in use"))
    def threshold_in_use(self, obj: Department) -> str:
        if obj.pk is None:
            return "—"
        row = _calibration()  # one small row; queues are few
        value, source = obj.threshold_in_use(row.threshold if row else None)
        return f"{value:.3f} ({source})" if value <= 1 else gettext("never (%(source)s)") % {"source": source}

    @admin.display(description=_("Gate calibration"))
    def gate_calibration(self, obj: Department) -> str:
        row = _calibration()
        votes = obj.ai_feedback_figures or {}
        kb = (
            format_html(
                gettext(
                    "Knowledge base: threshold {threshold} for ≤ {cap} % expected wrong answers, computed {when} "
                    "from {articles} articles ({questions} titles and headings replayed as questions): {confused} % "
                    "answered by another article, {twins} % of articles have a near-duplicate title, expected "
                    "wrong at 0.6: {wrong} %."
                ),
                threshold=f"{row.threshold:.3f}" if row.threshold <= 1 else gettext("never"),
                cap=number_format(round(row.wrong_cap * 100), 0),
                when=date_format(row.computed_at, "SHORT_DATETIME_FORMAT"),
                articles=row.articles,
                questions=row.pseudo_questions,
                confused=number_format(round(row.confused_share * 100, 1), 1),
                twins=number_format(round(row.twin_share * 100, 1), 1),
                wrong=number_format(round(row.figures.get("expected_wrong_at", {}).get("0.60", 0) * 100, 1), 1),
            )
            if row
            else gettext("Knowledge base: not calibrated yet (the beat does it within 15 minutes of a change).")
        )
        fb = (
            format_html(
                " {}",
                gettext(
                    "Customers' votes ({days} days): {answers} answers, {rated} rated, {no} “No”; threshold they "
                    "call for: {threshold}."
                ).format(
                    days=votes.get("days", ""),
                    answers=votes.get("answers", 0),
                    rated=votes.get("rated", 0),
                    no=votes.get("no_votes", 0),
                    threshold=f"{obj.ai_feedback_threshold:.3f}"
                    if obj.ai_feedback_threshold is not None
                    else gettext("none"),
                ),
            )
            if votes
            else ""
        )
        mode = " " + gettext("Overridden: manual mode.") if obj.threshold_overridden else ""
        return format_html("{}{}{}", kb, fb, mode)

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(EscalationRule)
class EscalationRuleAdmin(admin.ModelAdmin):
    """When the AI must hand over: data managers edit, checked in order on every customer message."""

    list_display = ("order", "name", "condition", "value", "reason", "set_priority", "is_active")
    list_display_links = ("name",)
    list_editable = ("order", "is_active")
    list_filter = ("is_active", "condition")


class AgentProfileInline(admin.StackedInline):
    model = AgentProfile
    can_delete = False
    filter_horizontal = ("departments",)
    verbose_name_plural = _("Agent profile")


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = (AgentProfileInline,)
