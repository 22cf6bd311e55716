"""The AI's configuration versions and A/B experiments in the console, for managers only.

A version is created (pre-filled from the active one) and then only activated, never edited: every
AI run names the version it used. An experiment is created as a draft, then started, stopped or — from
the AI page, next to its figures — promoted. Every change goes through ``tickets.services.ai_versions``,
which checks the role again and writes the history entry."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tickets import ai_config
from tickets.models import AIConfigVersion, AIExperiment
from tickets.roles import user_is_manager
from tickets.services import TicketRuleError, ai_versions


class ManagersOnlyAdmin(admin.ModelAdmin):
    """Managers see and create; nobody edits or deletes a record once it exists (actions change status)."""

    def has_module_permission(self, request) -> bool:
        return user_is_manager(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return user_is_manager(request.user)

    def has_add_permission(self, request) -> bool:
        return user_is_manager(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def log_addition(self, request, obj, message):
        """The service wrote the history entry already."""

    def _apply(self, request, queryset, service, done: str) -> None:
        for obj in queryset:
            try:
                service(user=request.user, obj=obj)
            except (TicketRuleError, PermissionError) as exc:
                self.message_user(request, f"{obj}: {exc}", messages.ERROR)
            else:
                self.message_user(request, done % {"name": str(obj)}, messages.SUCCESS)


class AIConfigVersionForm(forms.ModelForm):
    class Meta:
        model = AIConfigVersion
        fields = (
            "label",
            "triage_prompt",
            "reply_prompt",
            "model_triage",
            "model_reply",
            "confidence_threshold",
            "notes",
        )

    def clean(self):
        data = super().clean()
        for field in ai_config.PROMPT_FIELDS:
            problems = ai_config.prompt_problems(field, data.get(field) or "")
            if data.get(field) and problems:
                self.add_error(field, "; ".join(problems))
        return data


@admin.register(AIConfigVersion)
class AIConfigVersionAdmin(ManagersOnlyAdmin):
    form = AIConfigVersionForm
    list_display = (
        "label",
        "status",
        "model_triage",
        "model_reply",
        "confidence_threshold",
        "created_by",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("created_by",)
    search_fields = ("label",)
    readonly_fields = ("status", "created_by", "created_at")
    actions = ("activate",)

    def get_changeform_initial_data(self, request):
        """A new version starts as a copy of the active one: change what the experiment tests."""
        initial = super().get_changeform_initial_data(request)
        active = AIConfigVersion.objects.filter(status=AIConfigVersion.Status.ACTIVE).first()
        if active is not None:
            for field in AIConfigVersionForm.Meta.fields:
                if field != "label":
                    initial.setdefault(field, getattr(active, field))
        return initial

    def save_model(self, request, obj, form, change):
        created = ai_versions.ai_config_version_create(user=request.user, **form.cleaned_data)
        obj.pk, obj.status, obj.created_at = created.pk, created.status, created.created_at

    @admin.action(description=_("Make the selected version active (the current one is retired)"))
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, gettext("Select exactly one version to activate."), messages.ERROR)
            return
        self._apply(
            request,
            queryset,
            lambda *, user, obj: ai_versions.ai_config_version_activate(user=user, version=obj),
            gettext("%(name)s is active."),
        )


@admin.register(AIExperiment)
class AIExperimentAdmin(ManagersOnlyAdmin):
    fields = ("name", "version_a", "version_b", "share_b")
    list_display = (
        "name",
        "status",
        "version_a",
        "version_b",
        "share_b",
        "started_at",
        "ended_at",
        "winner",
        "figures",
    )
    list_filter = ("status",)
    list_select_related = ("version_a", "version_b", "winner")
    actions = ("start", "stop")

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.fields
        return (*self.fields, "status", "started_at", "ended_at", "winner", "created_by", "ended_by")

    def save_model(self, request, obj, form, change):
        created = ai_versions.ai_experiment_create(user=request.user, **form.cleaned_data)
        obj.pk, obj.status, obj.created_at = created.pk, created.status, created.created_at

    @admin.display(description=_("Figures"))
    def figures(self, experiment: AIExperiment) -> str:
        if experiment.status == AIExperiment.Status.DRAFT:
            return "—"
        return format_html('<a href="{}#experiments">{}</a>', reverse("analytics:ai"), gettext("AI page"))

    @admin.action(description=_("Start the selected experiment"))
    def start(self, request, queryset):
        self._apply(
            request,
            queryset,
            lambda *, user, obj: ai_versions.ai_experiment_start(user=user, experiment=obj),
            gettext("%(name)s started."),
        )

    @admin.action(description=_("Stop the selected experiments (no version changes)"))
    def stop(self, request, queryset):
        self._apply(
            request,
            queryset,
            lambda *, user, obj: ai_versions.ai_experiment_stop(user=user, experiment=obj),
            gettext("%(name)s stopped."),
        )
