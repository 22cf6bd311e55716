"""Console pages for the website widget's sites (managers and superusers only: ``tickets.roles``).

The public key and the identity secret are generated; the secret is shown once, in the message after the
site is created or its secret rotated (like a webhook's signing secret), never on a page afterwards.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from tickets.models import WidgetSite
from tickets.roles import user_is_manager
from tickets.widget import services
from tickets.widget.origins import origins_parse


class WidgetSiteForm(forms.ModelForm):
    allowed_origins = forms.CharField(
        label=_("Allowed origins"),
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "One per line, scheme://host[:port] with nothing after it, e.g. https://www.example.com. Only pages on "
            "these origins may show the widget (the CSP frame-ancestors of its pages)."
        ),
    )

    class Meta:
        model = WidgetSite
        fields = ("name", "allowed_origins", "department", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and isinstance(self.instance.allowed_origins, list):
            self.initial["allowed_origins"] = "\n".join(self.instance.allowed_origins)

    def clean_allowed_origins(self) -> list[str]:
        return origins_parse(self.cleaned_data["allowed_origins"])


@admin.register(WidgetSite)
class WidgetSiteAdmin(admin.ModelAdmin):
    form = WidgetSiteForm
    list_display = ("name", "public_key", "origin_list", "department", "is_active", "conversation_count")
    list_filter = ("is_active",)
    list_select_related = ("department",)
    search_fields = ("name", "public_key")
    readonly_fields = ("public_key", "snippet", "created_at")
    actions = ("rotate_identity_secret",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[WidgetSite]:
        return super().get_queryset(request).annotate(conversation_total=Count("conversations"))

    @admin.display(description=_("allowed origins"))
    def origin_list(self, obj: WidgetSite) -> str:
        return ", ".join(obj.allowed_origins)

    @admin.display(description=_("conversations"), ordering="conversation_total")
    def conversation_count(self, obj: WidgetSite) -> int:
        return getattr(obj, "conversation_total", 0)

    @admin.display(description=_("snippet for the site's pages"))
    def snippet(self, obj: WidgetSite) -> str:
        if obj.pk is None:
            return "—"
        code = f'<script src="https://HELPDESK/widget.js" data-site="{obj.public_key}" async></script>'
        return format_html(
            "<code>{}</code><br>{}",
            code,
            gettext("HELPDESK: this helpdesk's public address. docs/widget.md: options and identity verification."),
        )

    # Managers and superusers only, whatever permissions a group was given by hand. The model permission is
    # asked first: it is cached on the user for the request, so an agent's console pages (the sidebar asks
    # every admin) pay no extra query for the group check.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_view_permission(request, obj) and user_is_manager(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and user_is_manager(request.user)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_change_permission(request, obj) and user_is_manager(request.user)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and user_is_manager(request.user)

    def save_model(self, request: HttpRequest, obj: WidgetSite, form, change: bool) -> None:
        data = form.cleaned_data
        fields = {
            "name": data["name"],
            "allowed_origins": data["allowed_origins"],
            "department": data["department"],
            "is_active": data["is_active"],
        }
        if change:
            services.widget_site_update(site=WidgetSite.objects.get(pk=obj.pk), **fields)
            return
        created = services.widget_site_create(**fields)
        for field in created._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        self._secret_shown_once(request, created)

    def _secret_shown_once(self, request: HttpRequest, site: WidgetSite) -> None:
        messages.warning(
            request,
            gettext("Identity secret for “%(name)s”: %(secret)s — copy it to your server now, it is not shown again.")
            % {"name": site.name, "secret": site.identity_secret},
        )

    @admin.action(description=_("Rotate the identity secret (shown once)"), permissions=["change"])
    def rotate_identity_secret(self, request: HttpRequest, queryset: QuerySet[WidgetSite]) -> None:
        sites = list(queryset)
        for site in sites:
            self._secret_shown_once(request, services.widget_site_rotate_secret(site=site))
        self.message_user(
            request,
            ngettext(
                "%(n)d secret rotated: hashes signed with the old one are refused from now on.",
                "%(n)d secrets rotated: hashes signed with the old ones are refused from now on.",
                len(sites),
            )
            % {"n": len(sites)},
        )
