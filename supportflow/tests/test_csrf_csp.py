"""CSRF on every state-changing route, the security headers on every page, and rate limits that a forged
``X-Forwarded-For`` cannot reset.

Routes and who may use them come from the authorization matrix (``test_authz_matrix.ROUTES``, itself
checked against the URL conf), so a new route is covered here as soon as it is classified there.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

import supportflow.tests.test_authz_matrix as matrix
from supportflow import ratelimit
from supportflow.tests.authz_world import (  # noqa: F401 — world_fixture provides `world`
    EXTERNAL_ADDR,
    ROLES,
    world_fixture,
)

# Routes that take a POST without Django's CSRF check, and why that is safe. Anything else that is
# csrf_exempt fails test_csrf_exemptions_are_the_documented_ones.
CSRF_EXEMPT = {
    "inbound/email/": "mail provider hook: authenticated by the INBOUND_EMAIL_TOKEN bearer token, no cookies",
    "email/unsubscribe/<str:token>/": "RFC 8058 one-click unsubscribe: a mail client POSTs "
    "List-Unsubscribe=One-Click without cookies, authorized by the signed token; any other POST (the page's "
    "own form) goes through Django's CSRF check in the view",
    "integrations/slack/events/": "Slack Events API: verified by the X-Slack-Signature HMAC",
    "integrations/discord/interactions/": "Discord interactions: verified by the Ed25519 X-Signature",
    # The website widget runs in a third-party iframe, where our CSRF cookie is not sent (tickets.widget.views).
    "chat/widget/<str:site_key>/": "widget start: only from our own Origin (the framed page); takes no cookie",
    "chat/widget/<str:site_key>/c/<str:token>/<path:action>": (
        "widget actions: only from our own Origin; the signed conversation token in the path is the credential"
    ),
}
API_PREFIX = "api/v1/"
API_REASON = (
    "DRF views are csrf_exempt at the Django level: an API key (Authorization header) is not sent by "
    "browsers; a console session is CSRF-checked by DRF's SessionAuthentication (asserted here)"
)

SUMMARY = {"csrf_routes": 0, "csrf_posts_refused": 0, "csrf_exempt": 0, "api_session_posts_refused": 0}
SUMMARY["csrf_exempt_refused_by_own_auth"] = 0
SUMMARY.update({"pages_with_headers": 0, "responses_with_headers": 0})


def _csrf_client(w, role: str) -> Client:
    return w.client(role, enforce_csrf_checks=True)


def _roles_to_try(route) -> list[str]:
    """The role that may use the route with the most privileges (its session is what a forged form
    would ride on), plus anonymous visitors where they may post too (the chat and help-center forms)."""
    allowed = [role for role, want in zip(ROLES, route.expect, strict=True) if want == "y"]
    first = next((role for role in ("admin", "manager", "agent", "customer_a") if role in allowed), "admin")
    return [first, *(["anonymous"] if "anonymous" in allowed else [])]


def _is_exempt(pattern: str) -> bool:
    return pattern in CSRF_EXEMPT or pattern.startswith(API_PREFIX)


@pytest.fixture(scope="module", autouse=True)
def _summary(tmp_path_factory):
    yield
    SUMMARY["csrf_exemptions"] = {**CSRF_EXEMPT, f"{API_PREFIX}*": API_REASON}
    path = tmp_path_factory.getbasetemp() / "csrf-csp-summary.json"
    path.write_text(json.dumps(SUMMARY, indent=2))
    print(f"\nCSRF / CSP: {json.dumps(SUMMARY)} (written to {path})")


def test_csrf_exemptions_are_the_documented_ones():
    exempt = {pattern for pattern, entry in matrix.walk_routes() if getattr(entry.callback, "csrf_exempt", False)}
    undocumented = sorted(p for p in exempt if not _is_exempt(p))
    assert undocumented == [], "csrf_exempt routes without a documented reason in CSRF_EXEMPT"
    assert set(CSRF_EXEMPT) <= exempt, "documented exemptions that are not exempt any more"
    SUMMARY["csrf_exempt"] = len(exempt)


@pytest.mark.django_db
class TestCsrf:
    @pytest.mark.parametrize("pattern", matrix.HTTP_ROUTES)
    def test_a_post_without_a_token_is_refused(self, world, pattern):
        """Every role that may use the route, its cookies and session in place, posts without a token:
        Django's CSRF check refuses it before the view runs (so nothing changes)."""
        route = matrix.ROUTES[pattern]
        if pattern in CSRF_EXEMPT:
            # No Django CSRF check here, so a forged form riding the staff session must be refused by the
            # route's own authentication (token or signature) before anything changes.
            before = matrix._fingerprint()
            response = _csrf_client(world, "admin").post(route.url(world, "admin"), {"body": "hello"})
            where = f"POST {pattern!r} with a session, no token or signature → {response.status_code}"
            assert response.status_code in (401, 403), where
            assert matrix._fingerprint() == before, where
            SUMMARY["csrf_exempt_refused_by_own_auth"] += 1
            return
        for role in _roles_to_try(route):
            client = _csrf_client(world, role)
            before = matrix._fingerprint()
            response = client.post(route.url(world, role), {"body": "hello", "helpful": "yes"})
            where = f"POST {route.url(world, role)} as {role} (route {pattern!r}) → {response.status_code}"
            if pattern.startswith(API_PREFIX) and role not in ("manager", "admin", "agent", "agent_other"):
                # no session, no key: DRF refuses (401/403) or the route is public and read-only (405)
                assert response.status_code in (401, 403, 404, 405), where
                continue
            assert response.status_code == 403, where
            if "html" not in response.get("Content-Type", "") or not pattern.startswith(API_PREFIX):
                assert b"CSRF" in response.content, f"{where}: refused, but not by the CSRF check"
            assert matrix._fingerprint() == before, where
            SUMMARY["api_session_posts_refused" if pattern.startswith(API_PREFIX) else "csrf_posts_refused"] += 1
        SUMMARY["csrf_routes"] += 1

    def test_the_same_posts_with_a_token_get_through(self, world):
        """The control: with the token from the page, the customer's and the agent's forms work."""
        customer = _csrf_client(world, "anonymous")
        customer.get("/chat/")
        token = customer.cookies["csrftoken"].value
        data = {
            "name": "Casey",
            "email": "casey@example.com",
            "body": "My notes do not sync.",
            "csrfmiddlewaretoken": token,
        }
        assert customer.post("/chat/", data).status_code == 302

        agent = _csrf_client(world, "agent")
        url = reverse("admin:tickets_ticket_change", args=[world.ticket_a.pk])
        agent.get(url)
        data = {"_reply": "1", "body": "On it.", "csrfmiddlewaretoken": agent.cookies["csrftoken"].value}
        assert agent.post(url, data).status_code == 302
        assert world.ticket_a.messages.filter(body="On it.").exists()

    def test_an_api_key_needs_no_csrf_token(self, world):
        from supportflow.api.keys import api_key_create

        _, secret = api_key_create(name="csrf", user=world.users["agent"], scopes=["tickets:read", "tickets:write"])
        client = Client(enforce_csrf_checks=True, REMOTE_ADDR=EXTERNAL_ADDR)
        url = reverse("api:ticket-messages", args=[world.ticket_a.reference])
        response = client.post(
            url,
            {"body": "From the CRM", "internal": True},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        assert response.status_code == 201, response.content


# --- Content-Security-Policy, nosniff and framing on every page


WIDGET_PAGES = "chat/widget/"  # framed by their site's origins, and only by them (tickets/tests/test_widget.py)


def _assert_headers(response, where: str, *, framed_by: str = "'none'") -> None:
    policy = response.get("Content-Security-Policy", "")
    assert policy, f"{where}: no Content-Security-Policy"
    assert response.get("X-Content-Type-Options") == "nosniff", where
    if framed_by == "'none'":
        assert response.get("X-Frame-Options") == "DENY" or "frame-ancestors 'none'" in policy, where
    else:
        assert f"frame-ancestors {framed_by};" in f"{policy};", where  # exactly the site's origins


@pytest.mark.django_db
class TestSecurityHeaders:
    @pytest.mark.usefixtures("quiet_side_effects")
    @pytest.mark.parametrize("pattern", [p for p in matrix.HTTP_ROUTES if matrix.ROUTES[p].method == "get"])
    def test_every_page_carries_the_headers(self, world, pattern):
        """As the role that may see the page, and as an anonymous visitor (refusals, sign-in redirects
        and error pages are pages too)."""
        route = matrix.ROUTES[pattern]
        allowed = [role for role, want in zip(ROLES, route.expect, strict=True) if want == "y"]
        seer = next((role for role in ("admin", "manager", "agent", "customer_a") if role in allowed), "admin")
        for role in dict.fromkeys([seer, "anonymous"]):
            response = world.client(role).get(route.url(world, role))
            where = f"GET {route.url(world, role)} as {role} → {response.status_code}"
            widget_page = pattern.startswith(WIDGET_PAGES) and response.status_code in (200, 404)
            framed_by = " ".join(world.objects["widget_site"].allowed_origins) if widget_page else "'none'"
            _assert_headers(response, where, framed_by=framed_by)
            SUMMARY["responses_with_headers"] += 1
            if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
                assert f"frame-ancestors {framed_by}" in response["Content-Security-Policy"], where
                assert "script-src 'self'" in response["Content-Security-Policy"], where
                SUMMARY["pages_with_headers"] += 1


@pytest.fixture
def quiet_side_effects(monkeypatch):
    import knowledge.selectors

    monkeypatch.setattr(knowledge.selectors, "kb_search", lambda *a, **k: [])


# --- rate limits and X-Forwarded-For

FORGED = ["1.2.3.4", "5.6.7.8", "9.9.9.9", "10.11.12.13", "127.0.0.1"]


@pytest.fixture
def frozen_window(monkeypatch):
    """The limits count in fixed windows; a slow run must not straddle one and reset the count."""
    from types import SimpleNamespace

    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_800_000_000.0))


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "client"),
    [
        (0, "203.0.113.7", "1.2.3.4", "203.0.113.7"),  # no proxy trusted: the header is ignored
        (0, "203.0.113.7", "1.2.3.4, 198.51.100.9", "203.0.113.7"),
        (1, "10.0.0.1", "1.2.3.4, 198.51.100.9", "198.51.100.9"),  # our proxy appended the real client
        (2, "10.0.0.1", "1.2.3.4, 198.51.100.9, 10.0.0.2", "198.51.100.9"),
        (2, "10.0.0.1", "198.51.100.9", "10.0.0.1"),  # fewer hops than proxies: not believed
        (1, "10.0.0.1", "not-an-address", "10.0.0.1"),
        (1, "10.0.0.1", "", "10.0.0.1"),
    ],
)
def test_the_client_address_uses_only_trusted_hops(settings, proxies, remote, forwarded, client):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert ratelimit.client_ip(remote_addr=remote, forwarded_for=forwarded) == client
    scope = {"client": (remote, 50000), "headers": [(b"x-forwarded-for", forwarded.encode())]}
    assert ratelimit.scope_ip(scope) == client  # the websocket path


def test_the_api_trusts_the_same_number_of_proxies():
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == settings.TRUSTED_PROXY_COUNT


def _start(client: Client, n: int, **headers):
    data = {"name": f"Visitor {n}", "email": f"visitor{n}@example.com", "body": "My notes do not sync at all."}
    return client.post("/chat/", data, **headers)


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_window")
def test_new_conversations_per_address_ignore_a_forged_forwarded_for(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.CHAT_RATE_START_PER_IP = "2/600"
    statuses = [
        _start(Client(REMOTE_ADDR=EXTERNAL_ADDR), n, HTTP_X_FORWARDED_FOR=forged).status_code
        for n, forged in enumerate(FORGED[:3])
    ]
    assert statuses == [302, 302, 429]


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_window")
def test_behind_a_trusted_proxy_the_last_hop_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.CHAT_RATE_START_PER_IP = "2/600"
    proxy = "10.0.0.1"
    forged_left = [
        _start(Client(REMOTE_ADDR=proxy), n, HTTP_X_FORWARDED_FOR=f"{forged}, 198.51.100.9").status_code
        for n, forged in enumerate(FORGED[:3])
    ]
    assert forged_left == [302, 302, 429]  # the client forged the left part; the proxy's hop is the same
    others = [
        _start(Client(REMOTE_ADDR=proxy), 10 + n, HTTP_X_FORWARDED_FOR=f"198.51.100.{20 + n}").status_code
        for n in range(3)
    ]
    assert others == [302, 302, 302]  # other clients behind the same proxy are not limited with it


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_window")
def test_chat_sends_per_address_ignore_a_forged_forwarded_for(settings, ticket):
    from tickets import selectors

    settings.TRUSTED_PROXY_COUNT = 0
    settings.CHAT_RATE_PER_IP = "2/60"
    settings.CHAT_RATE_PER_CONVERSATION = "100/60"
    token = selectors.ticket_customer_token(ticket=ticket)
    url = reverse("chat:send", args=[token])
    statuses = [
        Client(REMOTE_ADDR=EXTERNAL_ADDR)
        .post(url, {"body": f"message {n}", "client_id": f"c{n}"}, HTTP_X_FORWARDED_FOR=forged)
        .status_code
        for n, forged in enumerate(FORGED[:3])
    ]
    assert statuses == [302, 302, 429]
    assert ticket.messages.filter(author_kind="customer").count() == 3  # the first message and two sends


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_window")
def test_help_votes_per_address_ignore_a_forged_forwarded_for(settings):
    from knowledge.models import Article

    settings.TRUSTED_PROXY_COUNT = 0
    Article.objects.create(title="Sync", slug="sync", body="Pull down to sync.", status="published")
    statuses = [
        Client(REMOTE_ADDR=EXTERNAL_ADDR)
        .post("/help/articles/sync/vote/", {"helpful": "yes"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        .status_code
        for n in range(31)
    ]
    assert statuses == [200] * 30 + [429]  # the limit is 30 a minute per address


@pytest.mark.django_db
def test_the_api_throttle_ignores_a_forged_forwarded_for(monkeypatch):
    """Anonymous callers only reach the throttle on public API routes (the schema)."""
    from supportflow.api.throttling import KeyOrUserRateThrottle

    monkeypatch.setattr(KeyOrUserRateThrottle, "THROTTLE_RATES", {"api": "2/min"})
    statuses = [
        Client(REMOTE_ADDR=EXTERNAL_ADDR).get("/api/v1/schema/", HTTP_X_FORWARDED_FOR=forged).status_code
        for forged in FORGED[:3]
    ]
    assert statuses == [200, 200, 429]
