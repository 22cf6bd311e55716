"""A customer's choice about our non-transactional email (services): the copies of agents' chat replies and the
rating requests. Replies to a customer's own email are the conversation and always go out."""

from __future__ import annotations

import logging

from django.utils import timezone

from tickets.models import Customer

logger = logging.getLogger(__name__)


def customer_email_unsubscribe(*, customer: Customer) -> Customer:
    """Idempotent: the first unsubscribe's time is kept (a mail client may POST the one-click link twice)."""
    if Customer.objects.filter(pk=customer.pk, email_unsubscribed_at__isnull=True).update(
        email_unsubscribed_at=timezone.now()
    ):
        logger.info("customer %s unsubscribed from email notices", customer.pk)
    customer.refresh_from_db(fields=["email_unsubscribed_at"])
    return customer


def customer_email_resubscribe(*, customer: Customer) -> Customer:
    Customer.objects.filter(pk=customer.pk).update(email_unsubscribed_at=None)
    customer.refresh_from_db(fields=["email_unsubscribed_at"])
    return customer
