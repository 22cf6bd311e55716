"""Outbound webhooks: subscriptions, event fan-out and signed delivery with retries.

A committed ticket change reaches ``on_ticket_event`` (a ``tickets.events`` subscriber). It maps the
internal kind to a public event name, builds the payload once and stores one ``WebhookDelivery`` per
active subscription to that event, then enqueues ``supportflow.integrations.tasks.deliver_webhook`` on
commit.
``webhook_deliver`` makes one attempt: it claims the attempt with a compare-and-set on ``attempts``
(a redelivered task cannot send twice at once), signs, POSTs through ``supportflow.outbound`` (SSRF
checks again at send time), records the attempt and says whether to retry and when.

Signature: ``X-SupportFlow-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``, with
``X-SupportFlow-Timestamp`` (Unix seconds) so receivers can refuse old replays.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from supportflow import generations, outbound
from supportflow.models import WebhookDelivery, WebhookSubscription
from tickets import events

logger = logging.getLogger(__name__)

Event = WebhookSubscription.Event
Status = WebhookDelivery.Status
USER_AGENT = "SupportFlow-Webhooks/1"


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --- subscriptions ---------------------------------------------------------------------------------


def webhook_url_validate(url: str) -> None:
    """ValidationError (shown on the form) unless ``url`` may be called now. A name that does not
    resolve is refused too: a subscription that can never be delivered is a mistake to report now."""
    try:
        outbound.url_vet(url, allow_private=_setting("WEBHOOKS_ALLOW_PRIVATE", False))
    except outbound.UnsafeURLError as exc:
        raise ValidationError(str(exc), code="unsafe_url") from exc
    except outbound.TransportError as exc:
        raise ValidationError(f"The address cannot be checked: {exc}.", code="unresolvable") from exc


def _clean_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(Event.values))
    if unknown:
        raise ValidationError(f"Unknown events: {', '.join(unknown)}.", code="unknown_event")
    if not events:
        raise ValidationError("Choose at least one event.", code="no_event")
    return sorted(set(events))


def webhook_secret_generate() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def webhook_subscription_create(
    *, name: str, url: str, events: list[str], created_by: Any = None
) -> WebhookSubscription:
    """Create an active subscription with a fresh secret (read it from ``.secret`` now: the console
    shows it once). ValidationError for a URL that may not be called or unknown events."""
    webhook_url_validate(url)
    return WebhookSubscription.objects.create(
        name=name.strip()[:100] or url[:100],
        url=url.strip(),
        events=_clean_events(events),
        secret=webhook_secret_generate(),
        created_by=created_by,
    )


def webhook_subscription_update(
    *,
    subscription: WebhookSubscription,
    name: str | None = None,
    url: str | None = None,
    events: list[str] | None = None,
    is_active: bool | None = None,
) -> WebhookSubscription:
    """Change a subscription. Switching it back on clears its failure count and disable reason."""
    fields = []
    if name is not None:
        subscription.name, fields = name.strip()[:100], [*fields, "name"]
    if url is not None and url.strip() != subscription.url:
        webhook_url_validate(url)
        subscription.url, fields = url.strip(), [*fields, "url"]
    if events is not None:
        subscription.events, fields = _clean_events(events), [*fields, "events"]
    if is_active is not None and is_active != subscription.is_active:
        subscription.is_active, fields = is_active, [*fields, "is_active"]
        if is_active:
            subscription.consecutive_failures, subscription.disabled_reason = 0, ""
            fields += ["consecutive_failures", "disabled_reason"]
    if fields:
        subscription.save(update_fields=fields)
    return subscription


def webhook_secret_rotate(*, subscription: WebhookSubscription) -> str:
    subscription.secret = webhook_secret_generate()
    subscription.save(update_fields=["secret"])
    return subscription.secret


# --- fan-out -------------------------------------------------------------------------------------


def _public_event(kind: str, payload: dict) -> str | None:
    if kind == events.TICKET_STATUS_CHANGED:
        return Event.TICKET_RESOLVED if payload.get("status") == "resolved" else Event.TICKET_UPDATED
    if kind == events.MESSAGE_CREATED:
        message = payload.get("message")
        return Event.MESSAGE_CREATED if message is not None and not message.is_internal else None
    return {
        events.TICKET_CREATED: Event.TICKET_CREATED,
        events.TICKET_ESCALATED: Event.TICKET_ESCALATED,
        events.TICKET_ASSIGNED: Event.TICKET_UPDATED,
        events.TICKET_UPDATED: Event.TICKET_UPDATED,
        events.TICKET_RATED: Event.TICKET_RATED,
    }.get(kind)


def ticket_admin_url(ticket_id: int) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/admin/tickets/ticket/{ticket_id}/change/"


def _event_data(kind: str, payload: dict) -> dict | None:
    from tickets.models import Message, Ticket

    ticket = Ticket.objects.select_related("department").filter(pk=payload["ticket_id"]).first()
    if ticket is None:
        return None
    data: dict[str, Any] = {
        "ticket": {
            "reference": ticket.reference,
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "department": ticket.department.slug if ticket.department else None,
            "channel": ticket.channel,
            "escalated": ticket.escalated,
            "created_at": ticket.created_at.isoformat(),
            "url": ticket_admin_url(ticket.pk),
        }
    }
    if kind == events.TICKET_ESCALATED:
        data["reason"] = payload.get("reason", "")
    elif kind == events.TICKET_RATED:
        data["score"] = payload.get("score")
    elif kind in {events.TICKET_UPDATED, events.TICKET_ASSIGNED}:
        data["fields"] = payload.get("fields") or ["assignee"]
    elif kind == events.TICKET_STATUS_CHANGED:
        data["fields"] = ["status"]
    elif kind == events.MESSAGE_CREATED:
        message = payload["message"]
        if message.is_internal:  # never: internal notes stay inside the console
            return None
        data["message"] = _message_data(message)
    elif kind == events.TICKET_CREATED:
        first = Message.objects.filter(pk=payload.get("message_id"), is_internal=False).first()
        if first is not None:
            data["message"] = _message_data(first)
    return data


def _message_data(message: Any) -> dict:
    return {
        "seq": message.seq,
        "author_kind": message.author_kind,
        "body": message.body,
        "created_at": message.created_at.isoformat(),
    }


def on_ticket_event(kind: str, **payload: Any) -> None:
    """``tickets.events`` subscriber: store a delivery per subscription and enqueue it. Never raises (a webhook
    problem must not fail the change that already committed); a lost enqueue is picked up by
    ``webhook_deliveries_requeue``."""
    try:
        webhook_event_fan_out(kind=kind, payload=payload)
    except Exception:
        logger.exception("webhook fan-out failed for %s on ticket %s", kind, payload.get("ticket_id"))


# --- which events anyone subscribes to, per process ---------------------------------------------------
# Every committed event (every chat message, several per AI answer) asks whether anyone subscribes to it;
# usually nobody does. The answer is kept per process under a generation stored in Redis, bumped on
# commit by every change to a subscription (``subscriptions_changed``): a fan-out then costs one Redis GET
# instead of an ORM query. Events someone subscribes to are still looked up exactly in PostgreSQL.

GENERATION_KEY = "webhooks:subscriptions:generation"
KNOWN_FOR_S = 60.0  # re-read at least this often anyway, in case a bump was lost with Redis
_known: dict[str, Any] = {"generation": None, "events": frozenset(), "at": 0.0}


def subscriptions_changed(**_: Any) -> None:
    """``post_save``/``post_delete`` receiver: every process re-reads the subscribed events on its next
    fan-out. Bumped now (this transaction's own fan-outs see the change) and again on commit (a process
    that re-read before the commit saw the old rows under the new generation)."""

    generations.bump(GENERATION_KEY)
    transaction.on_commit(lambda: generations.bump(GENERATION_KEY))


def _subscribed_events() -> frozenset[str] | None:
    """The events some active subscription wants, as of the current generation; ``None`` when Redis cannot
    say (then the caller asks PostgreSQL)."""
    generation = generations.current(GENERATION_KEY)
    if generation is None:  # the cache is down: ask the database
        return None
    if not _known_current(generation):
        rows = WebhookSubscription.objects.filter(is_active=True).values_list("events", flat=True)
        _known.update(
            events=frozenset(event for events_ in rows for event in events_), generation=generation, at=time.monotonic()
        )
    return _known["events"]


def _known_current(generation: str | None) -> bool:
    """Whether this process's copy of the subscribed events was read under ``generation``, recently."""
    fresh = time.monotonic() - _known["at"] <= KNOWN_FOR_S
    return generation is not None and _known["generation"] == generation and fresh


async def on_ticket_event_on_loop(kind: str, **payload: Any) -> bool:
    """``on_ticket_event``'s twin on the event loop (a chat message): True when nobody subscribes to the
    event — the common case, decided by the generation's one Redis GET on the loop, as
    ``_subscribed_events`` decides it — and False otherwise (the generation moved, Redis could not say, or
    someone subscribes: the deliveries are stored by ``on_ticket_event`` on a thread)."""
    event = _public_event(kind, payload)
    if event is None:
        return True
    from django.core.cache.backends.redis import RedisSerializer

    from supportflow import aio

    try:
        raw = await aio.redis(settings.REDIS_CACHE_URL).get(cache.make_and_validate_key(GENERATION_KEY))
        generation = None if raw is None else RedisSerializer().loads(raw)
    except Exception:
        logger.warning("webhook subscription generation unavailable on the loop", exc_info=True)
        return False
    if not _known_current(generation):
        return False
    return str(event) not in _known["events"]


def webhook_event_fan_out(*, kind: str, payload: dict) -> list[int]:
    """Runs for every committed event (every chat message): the common case — no subscription — is one
    Redis GET (``_subscribed_events``) outside any transaction; only storing deliveries opens one."""
    event = _public_event(kind, payload)
    if event is None:
        return []
    subscribed = _subscribed_events()
    if subscribed is not None and str(event) not in subscribed:
        return []
    subscriptions = list(WebhookSubscription.objects.filter(is_active=True, events__contains=[event]))
    if not subscriptions:
        return []
    data = _event_data(kind, payload)
    if data is None:
        return []
    event_id = uuid.uuid4()
    body = {"id": str(event_id), "event": str(event), "created_at": timezone.now().isoformat(), "data": data}
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(subscription=s, event=event, event_id=event_id, payload=body) for s in subscriptions
        )
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: _enqueue(ids))
    return ids


def _enqueue(ids: list[int]) -> None:
    from supportflow.integrations.tasks import deliver_webhook

    for pk in ids:
        try:
            deliver_webhook.delay(pk)
        except Exception:
            logger.exception("could not enqueue webhook delivery %s (the requeue sweep will)", pk)


# --- delivery ------------------------------------------------------------------------------------


def webhook_sign(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_backoff_s(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: exponential with full jitter over the upper half,
    capped below the broker's visibility timeout (a longer countdown would run repeatedly)."""
    base = _setting("WEBHOOK_RETRY_BASE_S", 10.0)
    cap = _setting("WEBHOOK_RETRY_MAX_S", 900.0)
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


@dataclass(frozen=True)
class Attempt:
    status: str
    retry_in: float | None = None


def _record(
    delivery: WebhookDelivery, *, status: str, code: int | None, error: str, duration_ms: int | None, **extra: Any
) -> None:
    entry = {
        "attempt": delivery.attempts,
        "at": timezone.now().isoformat(),
        "status_code": code,
        "error": error[:300],
        "duration_ms": duration_ms,
    }
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        last_status_code=code,
        last_error=error[:500],
        last_duration_ms=duration_ms,
        attempt_log=[*delivery.attempt_log, entry][-20:],
        **extra,
    )
    logger.info(
        "webhook delivery %s attempt %s: %s (code=%s, %s ms) %s",
        delivery.pk,
        delivery.attempts,
        status,
        code,
        duration_ms,
        error,
    )


def _subscription_failed(subscription_id: int, *, reason: str, disable: bool = False) -> None:
    WebhookSubscription.objects.filter(pk=subscription_id).update(consecutive_failures=F("consecutive_failures") + 1)
    sub = WebhookSubscription.objects.get(pk=subscription_id)
    limit = _setting("WEBHOOK_DISABLE_AFTER_FAILURES", 20)
    if disable or sub.consecutive_failures >= limit:
        why = reason if disable else f"{sub.consecutive_failures} deliveries in a row failed; last: {reason}"
        WebhookSubscription.objects.filter(pk=subscription_id, is_active=True).update(
            is_active=False, disabled_reason=why[:255]
        )
        logger.warning("webhook subscription %s disabled: %s", subscription_id, why)


def webhook_deliver(*, delivery_id: int) -> Attempt:
    """Make the next attempt of a pending or retrying delivery; anything else is a no-op (idempotent).

    2xx → succeeded. Refused address (at send: DNS may have changed) → refused, no retry. 410 Gone →
    failed and the subscription disabled. Other statuses (3xx included: redirects are not followed)
    and network errors → retrying with backoff until ``WEBHOOK_MAX_ATTEMPTS``, then failed; a
    subscription whose deliveries fail ``WEBHOOK_DISABLE_AFTER_FAILURES`` times in a row is disabled.
    """
    delivery = WebhookDelivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    if delivery is None or delivery.status not in (Status.PENDING, Status.RETRYING):
        return Attempt(status=delivery.status if delivery else "missing")
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status__in=(Status.PENDING, Status.RETRYING), attempts=delivery.attempts
    ).update(attempts=F("attempts") + 1, next_attempt_at=None)
    if claimed != 1:
        return Attempt(status="busy")
    delivery.attempts += 1
    subscription = delivery.subscription
    if not subscription.is_active:
        _record(delivery, status=Status.FAILED, code=None, error="subscription is disabled", duration_ms=None)
        return Attempt(status=Status.FAILED)

    timestamp = int(timezone.now().timestamp())
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-SupportFlow-Event": delivery.event,
        "X-SupportFlow-Delivery": str(delivery.event_id),
        "X-SupportFlow-Timestamp": str(timestamp),
        "X-SupportFlow-Signature": webhook_sign(secret=subscription.secret, timestamp=timestamp, body=body),
    }
    code: int | None = None
    duration: int | None = None
    try:
        response = outbound.post(
            subscription.url,
            body=body,
            headers=headers,
            timeout=_setting("WEBHOOK_TIMEOUT_S", 5.0),
            allow_private=_setting("WEBHOOKS_ALLOW_PRIVATE", False),
        )
    except outbound.UnsafeURLError as exc:
        _record(delivery, status=Status.REFUSED, code=None, error=str(exc), duration_ms=None)
        return Attempt(status=Status.REFUSED)
    except outbound.TransportError as exc:
        error = str(exc)
    else:
        code, duration = response.status, response.duration_ms
        if 200 <= code < 300:
            _record(
                delivery,
                status=Status.SUCCEEDED,
                code=code,
                error="",
                duration_ms=duration,
                delivered_at=timezone.now(),
            )
            WebhookSubscription.objects.filter(pk=subscription.pk).update(consecutive_failures=0)
            return Attempt(status=Status.SUCCEEDED)
        error = f"HTTP {code}" + (f" redirect to {response.headers.get('location', '')}" if 300 <= code < 400 else "")
        if code == 410:
            _record(delivery, status=Status.FAILED, code=code, error="410 Gone", duration_ms=duration)
            _subscription_failed(subscription.pk, reason="the endpoint answered 410 Gone", disable=True)
            return Attempt(status=Status.FAILED)

    if delivery.attempts >= _setting("WEBHOOK_MAX_ATTEMPTS", 6):
        _record(delivery, status=Status.FAILED, code=code, error=error, duration_ms=duration)
        _subscription_failed(subscription.pk, reason=error)
        return Attempt(status=Status.FAILED)
    wait = webhook_backoff_s(delivery.attempts)
    _record(
        delivery,
        status=Status.RETRYING,
        code=code,
        error=error,
        duration_ms=duration,
        next_attempt_at=timezone.now() + dt.timedelta(seconds=wait),
    )
    return Attempt(status=Status.RETRYING, retry_in=wait)


@transaction.atomic
def webhook_delivery_retry_now(*, delivery: WebhookDelivery) -> bool:
    """The console's "retry now": a delivery that is not in flight gets a fresh round of attempts."""
    updated = WebhookDelivery.objects.filter(
        pk=delivery.pk, status__in=(Status.RETRYING, Status.FAILED, Status.REFUSED)
    ).update(status=Status.PENDING, attempts=0, next_attempt_at=None)
    if updated:
        transaction.on_commit(lambda: _enqueue([delivery.pk]))
    return bool(updated)


def webhook_deliveries_requeue(*, now: dt.datetime | None = None, grace_s: float = 300.0) -> int:
    """Re-enqueue deliveries whose task was lost (broker down at enqueue, worker gone): pending for
    longer than ``grace_s``, or retrying and overdue by that much. Safe to run twice: the attempt
    claim in ``webhook_deliver`` lets one of two duplicate tasks send."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=grace_s)
    ids = list(
        WebhookDelivery.objects.filter(status=Status.PENDING, created_at__lt=cutoff, attempts=0).values_list(
            "pk", flat=True
        )[:500]
    ) + list(
        WebhookDelivery.objects.filter(status=Status.RETRYING, next_attempt_at__lt=cutoff).values_list("pk", flat=True)[
            :500
        ]
    )
    _enqueue(ids)
    return len(ids)
