"""API keys in the console: create (the key is shown once), list, revoke. Superusers manage every key;
managers create and revoke keys that act as themselves."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from supportflow.api.keys import api_key_create, api_key_revoke
from supportflow.models import APIKey
from tickets.roles import user_is_manager


class APIKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=APIKey.Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = APIKey
        fields = ["name", "user", "scopes", "expires_at"]

    def clean(self):
        data = super().clean()
        user = data.get("user")
        if user is not None and not (user.is_active and user.is_staff):
            self.add_error("user", "A key acts as an active staff user (an agent or a manager).")
        return data


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    form = APIKeyForm
    list_display = ["name", "prefix", "user", "scope_list", "created_at", "last_used_at", "expires_at", "state"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    actions = ["revoke"]

    @admin.display(description="Scopes")
    def scope_list(self, key: APIKey) -> str:
        return ", ".join(key.scopes)

    @admin.display(description="State")
    def state(self, key: APIKey) -> str:
        if key.revoked_at:
            return "revoked"
        return "active" if key.is_active else "expired"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return user_is_manager(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return user_is_manager(request.user) and (
            obj is None or request.user.is_superuser or obj.user_id == request.user.pk
        )

    has_add_permission = has_module_permission

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # revoke instead: the key's history stays

    def get_queryset(self, request: HttpRequest):
        qs = super().get_queryset(request).select_related("user")
        return qs if request.user.is_superuser else qs.filter(user=request.user)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return ["name", "user", "scopes", "expires_at"] if obj else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            users = get_user_model().objects.filter(is_active=True, is_staff=True)
            kwargs["queryset"] = users if request.user.is_superuser else users.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: APIKey, form, change: bool) -> None:
        if change:
            return
        key, secret = api_key_create(
            name=form.cleaned_data["name"],
            user=form.cleaned_data["user"],
            scopes=form.cleaned_data["scopes"],
            created_by=request.user,
            expires_at=form.cleaned_data.get("expires_at"),
        )
        obj.pk = key.pk
        messages.warning(
            request, f"Copy the key now — it is not shown again: {secret}  (use it as 'Authorization: Bearer <key>')"
        )

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset) -> None:
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"{queryset.count()} key(s) revoked.")
