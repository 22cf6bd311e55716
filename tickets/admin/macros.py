"""Macros in the console: the list and form where agents keep their own canned replies and managers the
shared ones, and the reply box's end of it — the endpoint that renders a macro for one ticket, and the
chips that say what a macro will do when the reply is sent. Writes go through ``tickets.services``."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import CharField, OuterRef, Q, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from supportflow import ratelimit
from tickets import roles, selectors, services
from tickets.models import Department, Macro, Priority, Ticket
from tickets.models.macros import ASSIGN_TO_SENDER, MACRO_STATUSES

User = get_user_model()
CHIP = "admin/tickets/ticket/macro_chip.html"
MACRO_OPTIONS_LIMIT = 200  # offered in one reply box; past that, the agent should tidy their macros
RENDER_LIMIT = ratelimit.Limit(120, 60)  # inserting a macro is a click; 2 a second for a minute is plenty


def _assignee_names(ids: set[int]) -> dict[int, str]:
    return dict(User.objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}


def macro_chip_context(macro: Macro, assignee_name: str = "") -> dict:
    return {
        "macro": macro,
        "actions": services.macro_actions_describe(macro.actions or {}, assignee_name=assignee_name),
    }


def macro_chips(*, macros: list[Macro]) -> list[dict]:
    """What each macro inserted in a reply will do when it is sent (one query for named assignees)."""
    names = _assignee_names({m.actions["assign"] for m in macros if isinstance((m.actions or {}).get("assign"), int)})
    return [macro_chip_context(m, names.get((m.actions or {}).get("assign"), "")) for m in macros]


def reply_macros(*, user, ticket: Ticket, ids: list[int]) -> list[Macro] | None:
    """The macros a reply names, in its order, if the user may still use each on this ticket; else ``None``."""
    if not ids:
        return []
    found = {m.pk: m for m in selectors.macros_for_ticket(user=user, ticket=ticket).filter(pk__in=ids)}
    return [found[pk] for pk in ids] if len(found) == len(ids) else None


@require_GET
def macro_render_view(request: HttpRequest, ticket_id: int, macro_id: int) -> JsonResponse:
    """A macro's text for this ticket (placeholders filled) and the chip saying what it will do when the
    reply is sent. Read-only: nothing is counted or applied until the reply is sent (a POST with CSRF).
    404 unless the user may see the ticket and use the macro on it."""
    ticket = selectors.ticket_get_for_user(user=request.user, pk=ticket_id)
    macro = selectors.macro_get_for_ticket(user=request.user, ticket=ticket, pk=macro_id)
    if not request.user.has_perm("tickets.add_message"):
        return JsonResponse({"error": gettext("You may not reply to tickets.")}, status=403)
    verdict = ratelimit.hit("macro-render", str(request.user.pk), RENDER_LIMIT)
    if not verdict.allowed:
        message = gettext("Too many macros at once. Wait %(s)d s and try again.") % {"s": verdict.retry_after}
        return JsonResponse({"error": message}, status=429)
    base_url = settings.SITE_URL or request.build_absolute_uri("/")
    try:
        text = services.macro_render(macro=macro, ticket=ticket, agent=request.user, base_url=base_url)
    except services.TicketRuleError as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    chip = render_to_string(CHIP, macro_chips(macros=[macro])[0], request=request)
    return JsonResponse({"macro": macro.pk, "name": macro.name, "text": text, "chip": chip})


# --- the macro list and form ---------------------------------------------------------------------------


class MacroAdminForm(forms.ModelForm):
    """The actions as four plain fields (stored as ``Macro.actions``); who owns the macro is decided by
    ``services.macro_check`` from the person saving and the "shared" box (managers only)."""

    shared = forms.BooleanField(
        label=_("Shared"),
        required=False,
        help_text=_("Every agent can use it (of the department below, if one is set). Off: only you."),
    )
    then_status = forms.ChoiceField(label=_("Then set status"), required=False)
    assign = forms.ChoiceField(label=_("Assign"), required=False)
    priority = forms.ChoiceField(label=_("Set priority"), required=False)
    tags = forms.CharField(
        label=_("Add tags"),
        required=False,
        max_length=300,
        help_text=_("Tag names, separated by commas."),
    )

    class Meta:
        model = Macro
        fields = ("name", "body", "department")
        widgets = {"body": forms.Textarea(attrs={"rows": 8, "cols": 80})}

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.fields["then_status"].choices = [("", _("Keep status"))] + [
            (s, Ticket.Status(s).label) for s in MACRO_STATUSES
        ]
        self.fields["priority"].choices = [("", _("Keep priority")), *Priority.choices]
        assign_choices = [("", _("Keep assignee")), (ASSIGN_TO_SENDER, _("Whoever sends it"))]
        if actor is not None and actor.has_perm("tickets.assign_others_ticket"):
            agents = (
                User.objects.filter(is_active=True, is_staff=True)
                .filter(Q(is_superuser=True) | Q(groups__name__in=(roles.AGENTS, roles.MANAGERS)))
                .distinct()
                .order_by("username")
            )
            assign_choices += [(str(u.pk), u.get_username()) for u in agents]
        self.fields["assign"].choices = assign_choices
        if "department" in self.fields and actor is not None and not selectors.user_sees_all_departments(actor):
            self.fields["department"].queryset = Department.objects.filter(agents__user=actor)
        if actor is None or not actor.has_perm("tickets.manage_shared_macro"):
            del self.fields["shared"]
        actions = self.instance.actions or {}
        self.initial.update(
            shared=self.instance.pk is not None and self.instance.is_shared,
            then_status=actions.get("status", ""),
            assign=str(actions.get("assign", "")),
            priority=actions.get("priority", ""),
            tags=", ".join(actions.get("tags") or ()),
        )

    def clean(self):
        cleaned = super().clean()
        actions: dict = {}
        if cleaned.get("then_status"):
            actions["status"] = cleaned["then_status"]
        if cleaned.get("assign"):
            assign = cleaned["assign"]
            actions["assign"] = assign if assign == ASSIGN_TO_SENDER else int(assign)
        if cleaned.get("priority"):
            actions["priority"] = cleaned["priority"]
        tags = [t.strip() for t in (cleaned.get("tags") or "").split(",") if t.strip()]
        if tags:
            actions["tags"] = list(dict.fromkeys(tags))
        self.instance.actions = actions
        return cleaned

    def _post_clean(self):
        """After the model's own checks: the owner and the rules that depend on who saves (one place,
        ``services.macro_check``, also used by the demo data and any other caller)."""
        super()._post_clean()
        if self.errors or self.actor is None:
            return
        try:
            services.macro_check(macro=self.instance, actor=self.actor, shared=self.cleaned_data.get("shared", False))
        except ValidationError as exc:
            self.add_error(None, exc)


class MacroScopeFilter(admin.SimpleListFilter):
    title = _("scope")
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return [("mine", _("Mine")), ("shared", _("Shared"))]

    def queryset(self, request, queryset):
        if self.value() == "mine":
            return queryset.filter(owner=request.user)
        if self.value() == "shared":
            return queryset.filter(owner__isnull=True)
        return queryset


@admin.register(Macro)
class MacroAdmin(admin.ModelAdmin):
    """Agents see their own macros and the shared ones of their departments; they change only their own.
    Managers (``manage_shared_macro``) also create, change and delete the shared ones."""

    form = MacroAdminForm
    list_display = ("name", "scope", "department", "actions_summary", "usage_count", "last_used_at")
    list_filter = (MacroScopeFilter, "department")
    list_select_related = ("department",)
    search_fields = ("name", "body")
    ordering = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "body", "shared", "department")}),
        (_("When the reply is sent"), {"fields": ("then_status", "assign", "priority", "tags")}),
        (_("Use"), {"fields": ("usage_count", "last_used_at")}),
    )
    readonly_fields = ("usage_count", "last_used_at")

    class Media:
        css = {"all": ["supportflow/admin.css"]}

    def get_queryset(self, request: HttpRequest):
        macros = (
            Macro.objects.all() if request.user.is_superuser else selectors.macro_queryset_for_user(user=request.user)
        )
        named = User.objects.annotate(pk_text=Cast("pk", CharField())).filter(
            pk_text=KeyTextTransform("assign", OuterRef("actions"))
        )
        return macros.annotate(assignee_name=Subquery(named.values("username")[:1]))

    def get_fieldsets(self, request: HttpRequest, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):  # a shared macro, read by an agent
            return (
                (None, {"fields": ("name", "body", "scope", "department", "actions_summary", *self.readonly_fields)}),
            )
        if request.user.has_perm("tickets.manage_shared_macro"):
            return self.fieldsets
        return ((None, {"fields": ("name", "body", "department")}), *self.fieldsets[1:])

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)

        class BoundToActor(form):
            def __init__(self, *args, **inner):
                super().__init__(*args, actor=request.user, **inner)

        return BoundToActor

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or services.macro_can_manage(macro=obj, user=request.user))

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or services.macro_can_manage(macro=obj, user=request.user))

    def save_model(self, request: HttpRequest, obj: Macro, form, change: bool) -> None:
        services.macro_save(macro=obj, actor=request.user, shared=form.cleaned_data.get("shared", False))

    def delete_model(self, request: HttpRequest, obj: Macro) -> None:
        services.macro_delete(macro=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for macro in queryset:
            services.macro_delete(macro=macro, actor=request.user)

    @admin.display(description=_("Scope"), ordering="owner")
    def scope(self, macro: Macro) -> str:
        return gettext("Shared") if macro.is_shared else gettext("Personal")

    @admin.display(description=_("When sent"))
    def actions_summary(self, macro: Macro) -> str:
        words = services.macro_actions_describe(macro.actions or {}, assignee_name=macro.assignee_name or "")
        return ", ".join(words) or "—"
