"""Outbound webhooks: fan-out, signing, retries, disabling, SSRF refusals — against real local
receivers, and end to end through a real Celery worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.core.exceptions import ValidationError

from supportflow import outbound
from supportflow.integrations import webhooks
from supportflow.models import WebhookDelivery, WebhookSubscription
from supportflow.tests.http_fakes import fake_server
from tickets import services
from tickets.tests.factories import make_ticket

Status = WebhookDelivery.Status


@pytest.fixture
def allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.SITE_URL = "https://support.example.com"
    return settings


@pytest.fixture
def receiver():
    with fake_server() as server:
        yield server


def subscribe(url: str, events=("ticket.escalated",)) -> WebhookSubscription:
    return webhooks.webhook_subscription_create(name="CRM", url=url, events=list(events))


def test_a_delivery_is_signed_over_timestamp_and_body(db, allow_private, receiver):
    # given a subscriber to escalations
    sub = subscribe(f"{receiver.url}/hook")
    ticket = make_ticket(subject="Card declined")
    # when the ticket is escalated (the on-commit hook's work, run here directly) and the delivery runs
    services.ticket_escalate(ticket=ticket, reason="angry customer")
    webhooks.webhook_event_fan_out(
        kind="ticket.escalated", payload={"ticket_id": ticket.pk, "reason": "angry customer"}
    )
    delivery = WebhookDelivery.objects.get()
    assert webhooks.webhook_deliver(delivery_id=delivery.pk).status == Status.SUCCEEDED
    # then the receiver got one signed POST it can verify
    (request,) = receiver.requests
    timestamp = request.headers["X-SupportFlow-Timestamp"]
    expected = hmac.new(sub.secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-SupportFlow-Signature"] == f"sha256={expected}"
    assert abs(int(timestamp) - time.time()) < 60
    assert request.headers["X-SupportFlow-Event"] == "ticket.escalated"
    assert request.headers["X-SupportFlow-Delivery"] == str(delivery.event_id)
    body = request.json()
    assert body["id"] == str(delivery.event_id)
    assert body["event"] == "ticket.escalated"
    assert body["data"]["reason"] == "angry customer"
    assert body["data"]["ticket"]["reference"] == ticket.reference
    assert body["data"]["ticket"]["subject"] == "Card declined"
    assert body["data"]["ticket"]["url"] == f"https://support.example.com/admin/tickets/ticket/{ticket.pk}/change/"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (Status.SUCCEEDED, 1, 200)
    assert delivery.delivered_at is not None
    assert len(delivery.attempt_log) == 1
    # and running the task again sends nothing more (idempotent)
    assert webhooks.webhook_deliver(delivery_id=delivery.pk).status == Status.SUCCEEDED
    assert len(receiver.requests) == 1


def test_internal_notes_are_never_sent_but_public_messages_are(db, allow_private, agent, ticket):
    subscribe("http://127.0.0.1:9999/x", events=["message.created"])
    webhooks.webhook_event_fan_out(
        kind="message.created",
        payload={
            "ticket_id": ticket.pk,
            "message": services.message_create(
                ticket=ticket, author_kind="agent", author_user=agent, body="secret note", is_internal=True
            ),
        },
    )
    assert WebhookDelivery.objects.count() == 0
    public = services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Hello!")
    webhooks.webhook_event_fan_out(kind="message.created", payload={"ticket_id": ticket.pk, "message": public})
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.payload["data"]["message"]["body"] == "Hello!"
    assert "secret note" not in json.dumps(delivery.payload)


@pytest.mark.parametrize(
    ("kind", "payload", "event"),
    [
        ("ticket.status_changed", {"status": "resolved"}, "ticket.resolved"),
        ("ticket.status_changed", {"status": "pending"}, "ticket.updated"),
        ("ticket.assigned", {"assignee_id": None}, "ticket.updated"),
        ("ticket.sla_breached", {"field": "x"}, None),
    ],
)
def test_internal_kinds_map_to_public_events(db, allow_private, ticket, kind, payload, event):
    subscribe("http://127.0.0.1:9999/x", events=[e.value for e in WebhookSubscription.Event])
    webhooks.webhook_event_fan_out(kind=kind, payload={"ticket_id": ticket.pk, **payload})
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ([event] if event else [])


def test_failures_are_retried_with_backoff_then_succeed(db, allow_private, receiver, ticket, settings):
    settings.WEBHOOK_RETRY_BASE_S = 10
    receiver.answer((500, {}, b"boom"), (503, {}, b"busy"), (204, {}, b""))
    subscribe(receiver.url)
    (delivery_id,) = webhooks.webhook_event_fan_out(kind="ticket.escalated", payload={"ticket_id": ticket.pk})

    first = webhooks.webhook_deliver(delivery_id=delivery_id)
    assert first.status == Status.RETRYING
    assert 5 <= first.retry_in <= 10
    second = webhooks.webhook_deliver(delivery_id=delivery_id)
    assert second.status == Status.RETRYING
    assert 10 <= second.retry_in <= 20
    assert webhooks.webhook_deliver(delivery_id=delivery_id).status == Status.SUCCEEDED

    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert [a["status_code"] for a in delivery.attempt_log] == [500, 503, 204]
    assert delivery.attempts == 3
    assert len(receiver.requests) == 3
    assert len({r.headers["X-SupportFlow-Delivery"] for r in receiver.requests}) == 1


def test_after_max_attempts_the_delivery_fails_and_repeated_failures_disable(
    db, allow_private, receiver, ticket, settings
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    receiver.answer((500, {}, b"down"))
    sub = subscribe(receiver.url)
    for expected_active in (True, False):
        (delivery_id,) = webhooks.webhook_event_fan_out(kind="ticket.escalated", payload={"ticket_id": ticket.pk})
        assert webhooks.webhook_deliver(delivery_id=delivery_id).status == Status.RETRYING
        assert webhooks.webhook_deliver(delivery_id=delivery_id).status == Status.FAILED
        sub.refresh_from_db()
        assert sub.is_active is expected_active
    assert sub.consecutive_failures == 2
    assert "2 deliveries in a row failed" in sub.disabled_reason
    # a disabled subscription gets no new deliveries
    assert webhooks.webhook_event_fan_out(kind="ticket.escalated", payload={"ticket_id": ticket.pk}) == []


def test_410_gone_disables_the_subscription_at_once(db, allow_private, receiver, ticket):
    receiver.answer((410, {}, b"gone"))
    sub = subscribe(receiver.url)
    (delivery_id,) = webhooks.webhook_event_fan_out(kind="ticket.escalated", payload={"ticket_id": ticket.pk})
    assert webhooks.webhook_deliver(delivery_id=delivery_id).status == Status.FAILED
    sub.refresh_from_db()
    assert not sub.is_active
    assert "410" in sub.disabled_reason
    assert len(receiver.requests) == 1


def test_redirects_are_not_followed(db, allow_private, ticket):
    with fake_server() as target, fake_server() as redirector:
        redirector.answer((302, {"Location": f"{target.url}/elsewhere"}, b""))
        subscribe(redirector.url)
        (delivery_id,) = webhooks.webhook_event_fan_out(kind="ticket.escalated", payload={"ticket_id": ticket.pk})
        attempt = webhooks.webhook_deliver(delivery_id=delivery_id)
        assert attempt.status == Status.RETRYING
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        assert delivery.last_status_code == 302
        assert "redirect" in delivery.last_error
        assert target.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[fe80::1]/hook",
        "http://localhost:8000/hook",
    ],
)
def test_private_loopback_link_local_and_metadata_addresses_are_refused(db, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(outbound.UnsafeURLError):
        outbound.url_vet(url, allow_private=False)
    with pytest.raises(ValidationError):
        subscribe(url)
    assert WebhookSubscription.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.215.14/hook",
        "file:///etc/passwd",
        "https://user:pw@93.184.215.14/hook",
        "http://93.184.215.14:25/hook",
        "gopher://93.184.215.14/",
        "https:///nohost",
    ],
)
def test_other_schemes_credentials_and_privileged_ports_are_refused(url):
    with pytest.raises(outbound.UnsafeURLError):
        outbound.url_vet(url, allow_private=True)


def test_a_public_address_passes_the_check():
    target = outbound.url_vet("https://93.184.215.14:8443/hooks?x=1", allow_private=False)
    assert (target.host, target.port, target.path, target.addresses) == (
        "93.184.215.14",
        8443,
        "/hooks?x=1",
        ("93.184.215.14",),
    )


def test_the_address_is_checked_again_at_send_and_refused_without_retry(db, settings, receiver, ticket):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    subscribe(receiver.url)
    (delivery_id,) = webhooks.webhook_event_fan_out(kind="ticket.escalated", payload={"ticket_id": ticket.pk})
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    attempt = webhooks.webhook_deliver(delivery_id=delivery_id)
    assert (attempt.status, attempt.retry_in) == (Status.REFUSED, None)
    assert receiver.requests == []
    assert "127.0.0.1" in WebhookDelivery.objects.get(pk=delivery_id).last_error


def test_retry_now_gives_a_failed_delivery_another_round(
    db, allow_private, receiver, ticket, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.answer((500, {}, b""), (200, {}, b""))
    subscribe(receiver.url)
    (delivery_id,) = webhooks.webhook_event_fan_out(kind="ticket.escalated", payload={"ticket_id": ticket.pk})
    assert webhooks.webhook_deliver(delivery_id=delivery_id).status == Status.FAILED
    with django_capture_on_commit_callbacks() as callbacks:
        assert webhooks.webhook_delivery_retry_now(delivery=WebhookDelivery.objects.get(pk=delivery_id))
    assert len(callbacks) == 1
    assert webhooks.webhook_deliver(delivery_id=delivery_id).status == Status.SUCCEEDED


def test_admin_creates_a_subscription_and_shows_the_secret_once(db, allow_private, manager, client):
    client.force_login(manager)
    response = client.post(
        "/admin/supportflow/webhooksubscription/add/",
        {"name": "CRM", "url": "http://127.0.0.1:9999/hook", "events": ["ticket.created"], "is_active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    sub = WebhookSubscription.objects.get()
    assert sub.secret.startswith("whsec_")
    assert sub.created_by == manager
    assert sub.secret in response.content.decode()
    assert sub.secret not in client.get(f"/admin/supportflow/webhooksubscription/{sub.pk}/change/").content.decode()


def test_admin_refuses_a_private_url_with_a_clear_error(db, settings, manager, client):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(manager)
    response = client.post(
        "/admin/supportflow/webhooksubscription/add/",
        {"name": "x", "url": "http://169.254.169.254/", "events": ["ticket.created"], "is_active": "on"},
    )
    assert response.status_code == 200
    assert "metadata addresses are not allowed" in response.content.decode()
    assert WebhookSubscription.objects.count() == 0


def test_agents_cannot_see_webhooks(db, agent, client):
    client.force_login(agent)
    assert client.get("/admin/supportflow/webhooksubscription/").status_code == 403


def _wait(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_an_escalation_is_delivered_through_the_worker_with_a_retry(celery_worker, allow_private, receiver, settings):
    settings.WEBHOOK_RETRY_BASE_S = 0.2
    receiver.answer((500, {}, b"first fails"), (200, {}, b"ok"))
    subscribe(receiver.url, events=["ticket.escalated", "ticket.resolved"])
    ticket = make_ticket(subject="Refund please")
    services.ticket_escalate(ticket=ticket, reason="VIP")
    _wait(lambda: WebhookDelivery.objects.filter(status=Status.SUCCEEDED).exists())
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event, delivery.attempts) == ("ticket.escalated", 2)
    assert [r.json()["event"] for r in receiver.requests] == ["ticket.escalated", "ticket.escalated"]


def test_an_event_nobody_subscribes_to_asks_redis_not_the_database(db, ticket, django_assert_num_queries):
    payload = {"ticket_id": ticket.pk, "reason": "angry customer"}
    webhooks.webhook_event_fan_out(kind="ticket.escalated", payload=payload)  # this process learns the set
    with django_assert_num_queries(0):
        assert webhooks.webhook_event_fan_out(kind="ticket.escalated", payload=payload) == []


def test_a_new_subscription_is_seen_by_the_next_event(db, allow_private, receiver, ticket):
    payload = {"ticket_id": ticket.pk, "reason": "angry customer"}
    assert webhooks.webhook_event_fan_out(kind="ticket.escalated", payload=payload) == []
    subscribe(f"{receiver.url}/hook")  # post_save bumps the generation
    assert len(webhooks.webhook_event_fan_out(kind="ticket.escalated", payload=payload)) == 1


def test_a_subscription_made_by_another_process_is_seen_once_it_bumps_the_generation(db, ticket):
    from django.core.cache import cache

    payload = {"ticket_id": ticket.pk, "reason": "angry customer"}
    assert webhooks.webhook_event_fan_out(kind="ticket.escalated", payload=payload) == []
    # another process's save: the row (no signal here) and its bump of the generation in Redis
    WebhookSubscription.objects.bulk_create(
        [WebhookSubscription(name="CRM", url="https://crm.example.com/hook", events=["ticket.escalated"], secret="s")]
    )
    assert webhooks.webhook_event_fan_out(kind="ticket.escalated", payload=payload) == []  # not yet told
    cache.set(webhooks.GENERATION_KEY, "bumped by another process", timeout=None)
    assert len(webhooks.webhook_event_fan_out(kind="ticket.escalated", payload=payload)) == 1


def test_without_redis_the_database_is_asked(db, ticket, monkeypatch, django_assert_num_queries):
    from django.core.cache import cache

    def unavailable(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "get", unavailable)
    with django_assert_num_queries(1):
        assert webhooks.webhook_event_fan_out(kind="ticket.escalated", payload={"ticket_id": ticket.pk}) == []
