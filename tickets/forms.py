from __future__ import annotations

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tickets.models import Ticket
from tickets.services import MESSAGE_MAX_LENGTH
from tickets.services.macros import MAX_MACROS_PER_REPLY


class AgentReplyForm(forms.Form):
    """The reply box on the ticket page: a reply to the customer or an internal note."""

    THEN_CHOICES = [
        ("", "Keep status"),
        (Ticket.Status.PENDING, "Set pending (waiting on customer)"),
        (Ticket.Status.RESOLVED, "Resolve"),
    ]

    body = forms.CharField(
        label="Message",
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(
            attrs={
                "rows": 5,
                "placeholder": "Write a reply… (type / for a macro)",
                "data-typing": "",
                # The macro picker (static/supportflow/console.js) is a listbox driven from the box.
                "aria-autocomplete": "list",
                "aria-controls": "sf-macro-list",
            }
        ),
        error_messages={
            "required": "Write something before sending.",
            "max_length": f"A message can be at most {MESSAGE_MAX_LENGTH:,} characters.",
        },
    )
    is_internal = forms.BooleanField(label="Internal note (agents only, never sent to the customer)", required=False)
    then_status = forms.ChoiceField(label="Then", choices=THEN_CHOICES, required=False)
    draft = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)
    # Collision (templates/admin/tickets/ticket/presence.html#conflict): the newest message the agent
    # had seen when writing; after a warning, what it showed and whether they chose "Send anyway".
    last_seen_seq = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=0)
    confirm_seq = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=0)
    send_anyway = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # The macros inserted in the reply ("3,7"): their actions are applied when it is sent.
    macros = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def clean_macros(self) -> list[int]:
        raw = self.cleaned_data.get("macros") or ""
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise forms.ValidationError(gettext("The list of macros is garbled; remove them and insert them again."))
        ids = list(dict.fromkeys(int(part) for part in parts))
        if len(ids) > MAX_MACROS_PER_REPLY:
            raise forms.ValidationError(gettext("At most %(n)d macros in one reply.") % {"n": MAX_MACROS_PER_REPLY})
        return ids

    def clean(self):
        cleaned = super().clean()
        if self.has_error("last_seen_seq") or self.has_error("confirm_seq"):
            raise forms.ValidationError(
                _("This page is out of date: reload it, then send again (copy your text first).")
            )
        if cleaned.get("is_internal") and cleaned.get("then_status"):
            raise forms.ValidationError("An internal note does not change the status; send it alone.")
        if cleaned.get("is_internal") and cleaned.get("draft"):
            raise forms.ValidationError("A draft reply goes to the customer; untick 'internal note' to send it.")
        return cleaned

    def seen_through(self) -> int | None:
        """The newest message the reply was written after: what the page had shown, or, for a confirmed
        "Send anyway", what the warning showed. None when the page did not say (nothing to compare)."""
        seen, confirmed = self.cleaned_data.get("last_seen_seq"), self.cleaned_data.get("confirm_seq")
        if self.cleaned_data.get("send_anyway") and confirmed is not None:
            return max(seen or 0, confirmed)
        return seen


class EscalateForm(forms.Form):
    reason = forms.CharField(
        max_length=255,
        error_messages={"required": "Say why the ticket is escalated."},
    )


class ChatStartForm(forms.Form):
    name = forms.CharField(
        label="Your name", max_length=200, error_messages={"required": "Tell us your name so we know who we talk to."}
    )
    email = forms.EmailField(
        label="Email", required=False, max_length=254, error_messages={"invalid": "That email address looks wrong."}
    )
    body = forms.CharField(
        label="How can we help?",
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "hx-get": "/help/suggest/?place=chat_start",
                "hx-trigger": "input changed delay:500ms",
                "hx-target": "#suggestions",
                "hx-swap": "innerHTML",
            }
        ),
        error_messages={
            "required": "Write your question.",
            "max_length": f"A message can be at most {MESSAGE_MAX_LENGTH:,} characters.",
        },
    )


class ChatSendForm(forms.Form):
    body = forms.CharField(strip=False)  # the service strips, validates and says what is wrong
    client_id = forms.CharField(required=False, max_length=64)


class CsatForm(forms.Form):
    score = forms.TypedChoiceField(
        choices=[(n, str(n)) for n in range(1, 6)],
        coerce=int,
        error_messages={"required": "Pick a rating from 1 to 5.", "invalid_choice": "Pick a rating from 1 to 5."},
    )
    comment = forms.CharField(required=False, max_length=2000)


class ChatEmailForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        error_messages={"required": "Type your email address.", "invalid": "That email address looks wrong."},
    )


class AnswerFeedbackForm(forms.Form):
    """ "Did this answer your question?" under an AI answer."""

    helpful = forms.ChoiceField(
        choices=[("yes", "Yes"), ("no", "No")],
        error_messages={"required": "Say yes or no.", "invalid_choice": "Say yes or no."},
    )
