"""Set-up in the console: customers, queues (departments) with their SLA policies, escalation rules,
and the agent profile on each staff user."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.urls import reverse
from django.utils.html import format_html

from tickets import selectors
from tickets.models import AgentProfile, Customer, Department, EscalationRule, SLAPolicy, SLATarget

User = get_user_model()


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "email", "is_vip", "ticket_count", "created_at")
    list_filter = ("is_vip",)
    search_fields = ("name", "email")
    readonly_fields = ("created_at", "tickets_link")

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

    @admin.display(description="Tickets", ordering="num_tickets")
    def ticket_count(self, customer: Customer) -> int:
        return customer.num_tickets

    @admin.display(description="Tickets")
    def tickets_link(self, customer: Customer) -> str:
        if not customer.email:
            return "—"
        url = reverse("admin:tickets_ticket_changelist") + "?q=" + customer.email
        return format_html('<a href="{}">Tickets of {}</a>', url, customer.email)


class SLATargetInline(admin.TabularInline):
    model = SLATarget
    extra = 0


@admin.register(SLAPolicy)
class SLAPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "business_hours_only", "timezone")
    inlines = (SLATargetInline,)


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "sla_policy", "is_active")
    list_select_related = ("sla_policy",)
    prepopulated_fields = {"slug": ("name",)}

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
    verbose_name_plural = "Agent profile"


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = (AgentProfileInline,)
