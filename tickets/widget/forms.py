from __future__ import annotations

from django import forms

from tickets.forms import ChatStartForm


class WidgetStartForm(ChatStartForm):
    """The chat's start form plus the visitor identity the site passed (filled in by the frame's script from
    the site page's data-user-* attributes; checked against the site's identity secret, never trusted as is)."""

    user_id = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    user_email = forms.CharField(required=False, max_length=254, widget=forms.HiddenInput)
    user_name = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    user_hash = forms.CharField(required=False, max_length=128, widget=forms.HiddenInput)

    def identity(self) -> dict[str, str]:
        data = self.cleaned_data
        return {
            "user_id": data.get("user_id", ""),
            "email": data.get("user_email", ""),
            "name": data.get("user_name", ""),
            "user_hash": data.get("user_hash", ""),
        }
