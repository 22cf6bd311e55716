"""The website widget's server side (tickets.widget): sites and their admin, the framing policy of its pages,
the token-bound POSTs that work without cookies, visitor identity, limits — against real PostgreSQL and Redis.
The browser side (another origin embedding the script) is test_widget_browser.py."""

from __future__ import annotations

import hashlib
import hmac
import logging
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from supportflow import ratelimit
from tickets import selectors
from tickets.models import Customer, Ticket, WidgetConversation, WidgetSite
from tickets.tests.factories import DepartmentFactory, make_agent, make_manager, make_ticket
from tickets.widget import services as widget_services
from tickets.widget.origins import origin_normalize, origins_parse

pytestmark = pytest.mark.django_db

OURS = "http://testserver"  # the test client's own origin
SHOP = "https://shop.example.com"
START = {"name": "Casey", "email": "", "body": "My notes do not sync."}


def sign(site: WidgetSite, user_id: str) -> str:
    return hmac.new(site.identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def site(department) -> WidgetSite:
    return widget_services.widget_site_create(
        name="Shop", allowed_origins=[SHOP, "http://localhost:8001"], department=department
    )


@pytest.fixture
def frozen_window(monkeypatch):
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_800_000_000.0))


def start_url(site: WidgetSite) -> str:
    return reverse("widget:start", args=[site.public_key])


def post_start(site: WidgetSite, data: dict, *, origin: str | None = OURS, client: Client | None = None):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    return (client or Client()).post(start_url(site), data, **headers)


def ancestors(response) -> str:
    """The value of the response's CSP frame-ancestors directive."""
    directives = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    return directives["frame-ancestors"]


def widget_ticket(site: WidgetSite, **kwargs) -> Ticket:
    ticket = make_ticket(**kwargs)
    WidgetConversation.objects.create(ticket=ticket, site=site)
    return ticket


# --- allowed origins: they go into a CSP header, so only plain origins pass


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://WWW.Example.com", "https://www.example.com"),
        ("https://www.example.com/", "https://www.example.com"),
        ("https://www.example.com:443", "https://www.example.com"),
        ("http://localhost:8001", "http://localhost:8001"),
        ("http://127.0.0.1:8001", "http://127.0.0.1:8001"),
    ],
)
def test_an_origin_is_stored_in_its_canonical_form(given, stored):
    assert origin_normalize(given) == stored


@pytest.mark.parametrize(
    "given",
    [
        "*",
        "https://*.example.com",
        "'none'",
        "https://example.com; script-src *",
        "https://example.com/path",
        "https://example.com?q=1",
        "javascript:alert(1)",
        "ftp://example.com",
        "https://user:pw@example.com",
        "example.com",
        "https://exa mple.com",
        "",
    ],
)
def test_anything_but_a_plain_origin_is_refused(given):
    with pytest.raises(ValidationError):
        origin_normalize(given)


def test_a_site_needs_at_least_one_origin_and_keeps_each_once():
    assert origins_parse("https://a.example\n\nhttps://A.example/\nhttps://b.example") == [
        "https://a.example",
        "https://b.example",
    ]
    with pytest.raises(ValidationError):
        origins_parse("\n  \n")


# --- the console: managers and superusers only, the secret shown once


def test_a_manager_adds_a_site_and_sees_its_identity_secret_once(department):
    client = Client()
    client.force_login(make_manager())
    data = {
        "name": "Docs site",
        "allowed_origins": "https://docs.example.com\nhttp://localhost:8001",
        "is_active": "on",
    }
    data["department"] = department.pk
    response = client.post(reverse("admin:tickets_widgetsite_add"), data, follow=True)
    assert response.status_code == 200
    site = WidgetSite.objects.get(name="Docs site")
    assert site.allowed_origins == ["https://docs.example.com", "http://localhost:8001"]
    assert site.public_key.startswith("site_")
    assert site.department == department
    assert site.identity_secret in response.content.decode()  # the message after creation
    page = client.get(reverse("admin:tickets_widgetsite_change", args=[site.pk])).content.decode()
    assert site.identity_secret not in page
    assert site.public_key in page  # in the snippet


def test_a_bad_origin_in_the_console_is_a_form_error_and_nothing_is_saved():
    client = Client()
    client.force_login(make_manager())
    data = {"name": "Bad", "allowed_origins": "https://ok.example.com\n*", "is_active": "on"}
    response = client.post(reverse("admin:tickets_widgetsite_add"), data)
    assert response.status_code == 200
    assert "is not an origin" in response.content.decode()
    assert not WidgetSite.objects.exists()


def test_rotating_the_secret_refuses_hashes_signed_with_the_old_one(site):
    client = Client()
    client.force_login(make_manager())
    old = site.identity_secret
    data = {"action": "rotate_identity_secret", "_selected_action": [site.pk]}
    response = client.post(reverse("admin:tickets_widgetsite_changelist"), data, follow=True)
    site.refresh_from_db()
    assert site.identity_secret != old
    assert site.identity_secret in response.content.decode()
    stale = hmac.new(old.encode(), b"u-1", hashlib.sha256).hexdigest()
    form = {**START, "user_id": "u-1", "user_hash": stale}
    assert post_start(site, form).status_code == 403


def test_agents_cannot_see_or_change_sites(site, department):
    client = Client()
    client.force_login(make_agent(department))
    assert client.get(reverse("admin:tickets_widgetsite_changelist")).status_code == 403
    data = {"name": "Mine", "allowed_origins": "https://evil.example.com", "is_active": "on"}
    assert client.post(reverse("admin:tickets_widgetsite_add"), data).status_code == 403
    change = reverse("admin:tickets_widgetsite_change", args=[site.pk])
    assert client.post(change, {**data, "name": "Renamed"}).status_code == 403
    site.refresh_from_db()
    assert (site.name, site.allowed_origins) == ("Shop", [SHOP, "http://localhost:8001"])


# --- framing: the widget's pages by the site's origins only, every other page by nobody


def test_the_widget_page_may_be_framed_by_exactly_the_sites_origins(client, site):
    response = client.get(start_url(site))
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert ancestors(response) == f"{SHOP} http://localhost:8001"
    assert policy.count("frame-ancestors") == 1
    assert "X-Frame-Options" not in response
    assert "script-src 'self'" in policy


def test_every_other_page_still_refuses_to_be_framed(client, site):
    for url in ("/chat/", "/help/", "/admin/login/"):
        response = client.get(url)
        assert ancestors(response) == "'none'", url
        assert response["X-Frame-Options"] == "DENY", url


def test_another_sites_page_allows_only_that_sites_origins(client, site):
    other = widget_services.widget_site_create(name="Other", allowed_origins=["https://other.example.org"])
    response = client.get(start_url(other))
    assert ancestors(response) == "https://other.example.org"
    assert SHOP not in response["Content-Security-Policy"]


@pytest.mark.parametrize(("key", "status"), [("site_unknownkey", 404), ("<script>", 404), ("x" * 60, 404)])
def test_an_unknown_site_key_is_a_4xx_that_nobody_may_frame(client, key, status):
    response = client.get(f"/chat/widget/{key}/")
    assert response.status_code == status
    assert ancestors(response) == "'none'"
    assert b"site key is unknown" in response.content


def test_a_switched_off_site_shows_nothing_and_starts_nothing(client, site):
    WidgetSite.objects.filter(pk=site.pk).update(is_active=False)
    response = client.get(start_url(site))
    assert response.status_code == 403
    assert b"switched off" in response.content
    assert ancestors(response) == "'none'"
    assert post_start(site, START).status_code == 403
    assert not Ticket.objects.exists()


def test_the_script_url_redirects_to_the_versioned_file_with_a_cache(client):
    response = client.get("/widget.js")
    assert response.status_code == 302
    assert response["Location"].endswith("supportflow/widget.js")
    assert "max-age=600" in response["Cache-Control"]
    assert "public" in response["Cache-Control"]
    script = client.get(response["Location"])
    assert script.status_code == 200
    source = b"".join(script.streaming_content) if script.streaming else script.content
    assert len(source) < 8 * 1024
    assert b"e.origin !== origin" in source  # messages only from our origin


# --- starting a conversation: from our own page only, no cookie needed


def test_a_guest_starts_a_conversation_in_the_sites_queue_without_any_cookie(site, department):
    response = post_start(site, START)
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert response["Location"] == reverse(
        "widget:conversation", args=[site.public_key, selectors.ticket_customer_token(ticket=ticket)]
    )
    assert ticket.department == department
    assert ticket.customer.name == "Casey"
    link = WidgetConversation.objects.get(ticket=ticket)
    assert (link.site, link.identity_verified, link.external_user_id) == (site, False, "")
    assert "sf_chat" not in response.cookies  # a third-party cookie would not come back anyway


@pytest.mark.parametrize("origin", [None, SHOP, "http://testserver.evil.example", "null"])
def test_a_start_that_does_not_come_from_our_page_is_refused(site, origin):
    response = post_start(site, START, origin=origin)
    assert response.status_code == 403
    assert b"must come from the chat widget" in response.content
    assert not Ticket.objects.exists()


def test_a_cross_site_fetch_is_refused_even_with_our_origin_header(site):
    response = Client().post(start_url(site), START, HTTP_ORIGIN=OURS, HTTP_SEC_FETCH_SITE="cross-site")
    assert response.status_code == 403
    assert not Ticket.objects.exists()


def test_a_start_with_an_empty_question_is_a_400_in_the_widget(site):
    response = post_start(site, {**START, "body": ""})
    assert response.status_code == 400
    assert b"Write your question." in response.content
    assert ancestors(response) == f"{SHOP} http://localhost:8001"
    assert not Ticket.objects.exists()


@pytest.mark.usefixtures("frozen_window")
def test_new_conversations_are_limited_per_site(settings, site):
    settings.WIDGET_RATE_START_PER_SITE = "2/600"
    statuses = [post_start(site, START, client=Client(REMOTE_ADDR=f"198.51.100.{n}")).status_code for n in range(3)]
    assert statuses == [302, 302, 429]
    assert Ticket.objects.count() == 2


@pytest.mark.usefixtures("frozen_window")
def test_new_conversations_are_limited_per_address_like_the_chat_page(settings, site):
    settings.CHAT_RATE_START_PER_IP = "1/600"
    assert [post_start(site, START).status_code for _ in range(2)] == [302, 429]
    assert Ticket.objects.count() == 1


# --- the visitor's identity: trusted only when the site signed it


def test_a_signed_identity_ties_the_conversation_to_that_customer(site):
    known = Customer.objects.create(name="Ada", email="ada@example.com")
    form = {**START, "user_id": "u-42", "user_email": "ada@example.com", "user_name": "Ada L.", "user_hash": ""}
    form["user_hash"] = sign(site, "u-42").upper()  # hex in either case
    assert post_start(site, form).status_code == 302
    first = Ticket.objects.get()
    assert first.customer == known
    assert WidgetConversation.objects.get(ticket=first).identity_verified

    # the same user again, this time without an email: still the same customer (by their verified id)
    again = {**START, "name": "u-42", "user_id": "u-42", "user_hash": sign(site, "u-42")}  # the frame fills the name
    assert post_start(site, again).status_code == 302
    assert Ticket.objects.exclude(pk=first.pk).get().customer == known


@pytest.mark.parametrize(
    "identity",
    [
        {"user_id": "u-42", "user_email": "ada@example.com", "user_hash": "0" * 64},  # wrong hash
        {"user_id": "u-42", "user_email": "ada@example.com", "user_hash": ""},  # unsigned
        {"user_email": "ada@example.com", "user_hash": "abc"},  # no user id
    ],
)
def test_an_unsigned_or_wrongly_signed_identity_is_refused_and_logged(site, caplog, identity):
    Customer.objects.create(name="Ada", email="ada@example.com")
    with caplog.at_level(logging.WARNING, logger="tickets.widget.selectors"):
        response = post_start(site, {**START, **identity})
    assert response.status_code == 403
    page = response.content.decode()
    assert "sign-in could not be verified" in page
    assert 'name="user_hash" id="id_user_hash"' in page
    assert "0" * 64 not in page
    assert "My notes do not sync." in page  # the question is kept
    assert "data-widget-identity-refused" in page
    assert not Ticket.objects.exists()
    assert any("widget identity refused" in r.getMessage() for r in caplog.records)


def test_a_signed_identity_with_a_malformed_email_keeps_the_user_id_and_drops_the_email(site):
    form = {**START, "user_id": "u-9", "user_email": "not an address", "user_hash": sign(site, "u-9")}
    assert post_start(site, form).status_code == 302
    ticket = Ticket.objects.select_related("customer").get()
    assert ticket.customer.email == ""
    assert WidgetConversation.objects.get(ticket=ticket).external_user_id == "u-9"


def test_a_guest_email_is_not_an_identity(site):
    """The guest form's email is what the chat page's form is: a contact, unverified (docs/widget.md)."""
    assert post_start(site, {**START, "email": "guest@example.com"}).status_code == 302
    assert not WidgetConversation.objects.get().identity_verified


# --- the conversation in the widget, and its POSTs


def test_the_conversation_page_in_the_widget_sets_no_cookie_and_posts_to_its_twin(client, site):
    ticket = widget_ticket(site)
    token = selectors.ticket_customer_token(ticket=ticket)
    response = client.get(reverse("widget:conversation", args=[site.public_key, token]))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-widget-token="{token}"' in page
    assert f'data-send-url="{reverse("widget:action", args=[site.public_key, token, "send/"])}"' in page
    assert "sf_chat" not in response.cookies
    assert ancestors(response) == f"{SHOP} http://localhost:8001"


def test_a_conversation_of_another_site_or_none_is_not_shown_and_the_widget_forgets_it(client, site):
    plain = make_ticket()  # started on the chat page, not in this widget
    response = client.get(
        reverse("widget:conversation", args=[site.public_key, selectors.ticket_customer_token(ticket=plain)])
    )
    assert response.status_code == 404
    assert "data-widget-forget" in response.content.decode()
    assert plain.subject not in response.content.decode()


def _action(site, ticket, action: str, data: dict, **headers):
    token = selectors.ticket_customer_token(ticket=ticket)
    url = reverse("widget:action", args=[site.public_key, token, action])
    return Client().post(url, data, HTTP_HX_REQUEST="true", **headers)


def test_a_message_sent_through_the_widget_is_stored_without_a_csrf_cookie(site):
    ticket = widget_ticket(site)
    response = _action(site, ticket, "send/", {"body": "Still broken", "client_id": "c1"}, HTTP_ORIGIN=OURS)
    assert response.status_code == 200
    assert "Still broken" in response.content.decode()
    assert ticket.messages.filter(body="Still broken", author_kind="customer").count() == 1


@pytest.mark.parametrize("origin", [None, SHOP])
def test_a_widget_post_from_elsewhere_changes_nothing(site, origin):
    ticket = widget_ticket(site)
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    for action, data in (("send/", {"body": "forged"}), ("solved/", {}), ("person/", {})):
        assert _action(site, ticket, action, data, **headers).status_code == 403
    ticket.refresh_from_db()
    assert ticket.messages.count() == 1
    assert (ticket.status, ticket.escalated) == ("new", False)


def test_only_the_conversations_post_routes_have_a_twin(site):
    ticket = widget_ticket(site)
    assert _action(site, ticket, "language/", {"language": "de"}, HTTP_ORIGIN=OURS).status_code == 404
    assert _action(site, ticket, "messages/", {}, HTTP_ORIGIN=OURS).status_code == 404
    assert _action(site, ticket, "../../admin/", {}, HTTP_ORIGIN=OURS).status_code == 404
    ticket.refresh_from_db()
    assert not ticket.ui_language_chosen


def test_a_widget_post_for_another_sites_conversation_is_a_404(site):
    other = widget_services.widget_site_create(name="Other", allowed_origins=["https://other.example.org"])
    ticket = widget_ticket(other)
    assert _action(site, ticket, "send/", {"body": "hello"}, HTTP_ORIGIN=OURS).status_code == 404
    assert ticket.messages.count() == 1


def test_the_solved_and_feedback_twins_work(site):
    ticket = widget_ticket(site)
    answer = ticket.messages.create(seq=2, author_kind="ai", body="Pull down to sync.", ai_confidence=0.9)
    Ticket.objects.filter(pk=ticket.pk).update(last_message_seq=2)
    response = _action(site, ticket, f"answers/{answer.seq}/feedback/", {"helpful": "yes"}, HTTP_ORIGIN=OURS)
    assert response.status_code == 200
    answer.refresh_from_db()
    assert answer.feedback == "yes"
    assert _action(site, ticket, "solved/", {}, HTTP_ORIGIN=OURS).status_code == 200
    ticket.refresh_from_db()
    assert ticket.status == "resolved"


# --- the websocket: nothing is opened for the sites' origins


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
def test_a_socket_from_an_allowed_sites_origin_is_still_refused():
    """The framed page is served from our origin, so its socket's Origin is ours: a site's own origin
    never needs the socket, and the origin check does not let it in (docs/widget.md)."""
    from channels.testing import WebsocketCommunicator

    from supportflow.asgi import application

    site = widget_services.widget_site_create(name="Shop", allowed_origins=[SHOP])
    ticket = widget_ticket(site, department=DepartmentFactory())
    path = f"/ws/chat/{selectors.ticket_customer_token(ticket=ticket)}/"

    async def connects(origin: bytes) -> bool:
        communicator = WebsocketCommunicator(application, path, headers=[(b"origin", origin)])
        connected, _ = await communicator.connect(timeout=10)
        await communicator.disconnect()
        return connected

    assert async_to_sync(connects)(SHOP.encode()) is False
    assert async_to_sync(connects)(b"http://localhost") is True  # our own origin (ALLOWED_HOSTS)
