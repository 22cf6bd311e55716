from __future__ import annotations

from django import forms

from tickets.models import Ticket
from tickets.services import MESSAGE_MAX_LENGTH


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
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "Write a reply…"}),
        error_messages={
            "required": "Write something before sending.",
            "max_length": f"A message can be at most {MESSAGE_MAX_LENGTH:,} characters.",
        },
    )
    is_internal = forms.BooleanField(label="Internal note (agents only, never sent to the customer)", required=False)
    then_status = forms.ChoiceField(label="Then", choices=THEN_CHOICES, required=False)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("is_internal") and cleaned.get("then_status"):
            raise forms.ValidationError("An internal note does not change the status; send it alone.")
        return cleaned


class EscalateForm(forms.Form):
    reason = forms.CharField(
        max_length=255,
        error_messages={"required": "Say why the ticket is escalated."},
    )
