"""The REST API: keys and scopes, roles and object-level access on every endpoint (lists and search
included), writes through the services, one error body, throttling, the OpenAPI schema and its docs."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from supportflow.api.keys import api_key_check, api_key_create, api_key_revoke
from supportflow.api.throttling import KeyOrUserRateThrottle
from tickets.models import Ticket
from tickets.tests.factories import DepartmentFactory, make_agent, make_manager, make_ticket

pytestmark = pytest.mark.django_db
ALL = ["tickets:read", "tickets:write", "kb:read", "analytics:read"]


@pytest.fixture
def world():
    billing, tech = DepartmentFactory(name="Billing", slug="billing"), DepartmentFactory(name="Tech", slug="tech")
    agent = make_agent(billing, username="alice")
    manager = make_manager(billing, tech, username="maria")
    mine = make_ticket(department=billing, subject="Invoice wrong")
    theirs = make_ticket(department=tech, subject="Sync broken")
    return {"billing": billing, "tech": tech, "agent": agent, "manager": manager, "mine": mine, "theirs": theirs}


def client_for(user, scopes=ALL) -> APIClient:
    _, secret = api_key_create(name="test", user=user, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def refs(response) -> set[str]:
    return {t["reference"] for t in response.json()["results"]}


def test_keys_are_stored_hashed_shown_once_and_revocable(world):
    key, secret = api_key_create(name="CRM", user=world["agent"], scopes=["tickets:read"])
    assert secret.startswith(f"sf_{key.prefix}_")
    assert secret not in key.hashed_secret
    assert api_key_check(secret) == key
    assert api_key_check(secret + "x") is None
    api_key_revoke(key=key)
    assert api_key_check(secret) is None


def test_no_or_bad_credentials_get_401_with_the_error_body(world):
    anonymous = APIClient().get("/api/v1/tickets/")
    assert anonymous.status_code in (401, 403)
    bad = APIClient(HTTP_AUTHORIZATION="Bearer sf_nope_nope").get("/api/v1/tickets/")
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "authentication_failed"
    assert "not valid" in bad.json()["error"]["message"]


def test_a_revoked_key_stops_working_at_once(world):
    key, secret = api_key_create(name="x", user=world["agent"], scopes=["tickets:read"])
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/tickets/").status_code == 200
    api_key_revoke(key=key)
    assert client.get("/api/v1/tickets/").status_code == 401


@pytest.mark.parametrize(
    ("scopes", "method", "url", "expected"),
    [
        (["kb:read"], "get", "/api/v1/tickets/", 403),
        (["tickets:read"], "get", "/api/v1/tickets/", 200),
        (["tickets:read"], "post", "/api/v1/tickets/", 403),
        (["tickets:write"], "get", "/api/v1/tickets/", 403),
        (["tickets:read"], "get", "/api/v1/customers/", 200),
        (["tickets:read"], "get", "/api/v1/kb/articles/", 403),
        (["kb:read"], "get", "/api/v1/kb/articles/", 200),
        (["kb:read"], "get", "/api/v1/kb/search/?q=invoice", 200),
        (["tickets:read"], "get", "/api/v1/kb/search/?q=invoice", 403),
        (["tickets:read"], "get", "/api/v1/analytics/summary/", 403),
    ],
)
def test_scope_matrix(world, scopes, method, url, expected):
    response = getattr(client_for(world["manager"], scopes), method)(url, {}, format="json")
    assert response.status_code == expected, response.content
    if expected == 403:
        assert "scope" in response.json()["error"]["message"]


def test_agents_see_only_their_queues_in_lists_search_and_detail(world):
    agent = client_for(world["agent"])
    assert refs(agent.get("/api/v1/tickets/")) == {world["mine"].reference}
    assert refs(agent.get("/api/v1/tickets/", {"search": "Sync"})) == set()
    assert agent.get(f"/api/v1/tickets/{world['theirs'].reference}/").status_code == 404
    assert agent.get(f"/api/v1/tickets/{world['theirs'].reference}/messages/").status_code == 404
    emails = {c["email"] for c in agent.get("/api/v1/customers/").json()["results"]}
    assert emails == {world["mine"].customer.email}
    manager = client_for(world["manager"])
    assert refs(manager.get("/api/v1/tickets/")) == {world["mine"].reference, world["theirs"].reference}


def test_customers_and_non_staff_users_are_refused(world):
    from tickets.tests.factories import UserFactory

    plain = UserFactory(is_staff=False)
    client = APIClient()
    client.force_authenticate(plain)
    response = client.get("/api/v1/tickets/")
    assert response.status_code == 403
    assert "staff" in response.json()["error"]["message"]


def test_analytics_summary_is_for_managers(world):
    assert client_for(world["agent"]).get("/api/v1/analytics/summary/").status_code == 403
    response = client_for(world["manager"]).get("/api/v1/analytics/summary/", {"days": 7})
    assert response.status_code == 200
    assert response.json()["created"] == 2
    assert client_for(world["manager"]).get("/api/v1/analytics/summary/", {"days": 0}).status_code == 400


def test_create_a_ticket_and_talk_on_it(world):
    client = client_for(world["agent"])
    created = client.post(
        "/api/v1/tickets/",
        {
            "customer_email": "ada@example.com",
            "subject": "Refund",
            "body": "I was charged twice.",
            "department": "billing",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    ref = created.json()["reference"]
    ticket = Ticket.objects.get(reference=ref)
    assert (ticket.channel, ticket.department.slug, ticket.customer.email) == ("api", "billing", "ada@example.com")

    reply = client.post(
        f"/api/v1/tickets/{ref}/messages/", {"body": "Refunded.", "set_status": "resolved"}, format="json"
    )
    assert reply.status_code == 201
    note = client.post(
        f"/api/v1/tickets/{ref}/messages/", {"body": "Checked in Stripe", "internal": True}, format="json"
    )
    assert note.json()["is_internal"] is True
    thread = client.get(f"/api/v1/tickets/{ref}/messages/").json()["results"]
    assert [m["author_kind"] for m in thread] == ["customer", "agent", "agent"]
    assert Ticket.objects.get(reference=ref).status == "resolved"  # an internal note changes nothing


def test_updates_follow_the_rules_and_roles(world):
    agent = client_for(world["agent"])
    url = f"/api/v1/tickets/{world['mine'].reference}/"
    assert agent.patch(url, {"priority": "high"}, format="json").json()["priority"] == "high"
    assert agent.patch(url, {"assignee": "alice"}, format="json").json()["assignee"] == "alice"
    others = agent.patch(url, {"assignee": "maria"}, format="json")
    assert others.status_code == 409
    assert "yourself only" in others.json()["error"]["message"]
    moved = agent.patch(url, {"department": "tech"}, format="json")
    assert moved.status_code == 403
    illegal = agent.patch(url, {"status": "closed"}, format="json")
    assert illegal.status_code in (200, 409)
    invalid = agent.patch(url, {"priority": "whenever"}, format="json")
    assert invalid.status_code == 400
    assert invalid.json()["error"]["fields"]["priority"]


def test_bad_input_gets_a_clear_400(world):
    client = client_for(world["agent"])
    response = client.post("/api/v1/tickets/", {"body": ""}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["status"] == 400
    assert "body" in body["fields"]
    assert client.get("/api/v1/kb/search/").status_code == 400
    assert client.get("/api/v1/kb/search/", {"q": "x", "k": "lots"}).status_code == 400


def test_throttling_counts_per_key_and_ignores_spoofed_forwarded_for(world, monkeypatch):
    from django.core.cache import cache

    cache.clear()
    monkeypatch.setattr(KeyOrUserRateThrottle, "THROTTLE_RATES", {"api": "3/min"})
    client = client_for(world["agent"])
    responses = [client.get("/api/v1/tickets/") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert 1 <= int(responses[3]["Retry-After"]) <= 60
    assert responses[3].json()["error"]["code"] == "throttled"
    assert client_for(world["manager"]).get("/api/v1/tickets/").status_code == 200  # another key, own budget

    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    spoofed = Request(APIRequestFactory().get("/", HTTP_X_FORWARDED_FOR="10.9.9.9", REMOTE_ADDR="192.0.2.7"))
    assert KeyOrUserRateThrottle().get_ident(spoofed) == "192.0.2.7"  # no trusted proxy: the header is ignored


def test_schema_and_docs_are_served_from_our_own_files(client, world):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/tickets/", "/api/v1/tickets/{reference}/messages/", "/api/v1/kb/search/"} <= set(paths)
    for url in ("/api/v1/docs/",):
        html = client.get(url).content.decode()
        assert "/static/vendor/" in html
        assert not re.search(r"(src|href)=[\"']https?://", html), url  # nothing from another site
    assert reverse("api:schema") == "/api/v1/schema/"
