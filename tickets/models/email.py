"""The email channel's records: each stored message (raw MIME, threading headers) and its attachments."""

from __future__ import annotations

from django.db import models

from tickets.models.tickets import Message, Ticket


class EmailRecord(models.Model):
    """One email we received or sent, tied to the ticket message it became (``tickets.email``).

    ``msgid`` (the Message-ID header) is unique: a provider's retry or a second IMAP fetch of the same email is a no-op,
    and a reply's In-Reply-To/References can only thread into tickets whose mail we really handled.
    """

    class Direction(models.TextChoices):
        INBOUND = "in", "Received"
        OUTBOUND = "out", "Sent"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        IGNORED = "ignored", "Ignored (automatic mail, not threaded)"
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Sending failed"
        SKIPPED = "skipped", "Not sent (no deliverable address, or unsubscribed)"

    msgid = models.CharField("Message-ID", max_length=500, unique=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, null=True, blank=True, related_name="emails")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, null=True, blank=True, related_name="email")
    in_reply_to = models.CharField(max_length=500, blank=True)
    references = models.TextField(blank=True, help_text="Message-IDs of the thread, space-separated.")
    from_address = models.CharField(max_length=320, blank=True)
    to_addresses = models.TextField(blank=True)
    subject = models.CharField(max_length=255, blank=True)
    auto_reason = models.CharField(
        max_length=40, blank=True, help_text="Why it counts as automatic mail (bounce, auto-reply…); never answered."
    )
    raw_name = models.CharField(max_length=255, blank=True, help_text="The raw MIME, in private storage.")
    error = models.TextField(blank=True)
    key = models.CharField(
        max_length=100,
        blank=True,
        help_text="What an outbound email without a message is for (``csat:<ticket id>``): unique, so it "
        "goes out once.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="emailrecord_ticket_created")]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=~models.Q(key=""), name="emailrecord_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.msgid}"


class Attachment(models.Model):
    """A file that came with a customer's email. Stored under the private root (``EMAIL_PRIVATE_ROOT``),
    never under static or media; served only by ``tickets.email.views`` after an access check."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["message", "pk"]

    def __str__(self) -> str:
        return self.filename
