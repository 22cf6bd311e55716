"""The customer pages over HTTP: start, open by link, the POST fallback, catch-up, rating, headers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tickets import selectors, services
from tickets.models import Customer, Message, Ticket
from tickets.tests.factories import make_ticket

START = reverse("chat:start")
HTMX = {"HTTP_HX_REQUEST": "true"}


def link(ticket, name="conversation"):
    return reverse(f"chat:{name}", args=[selectors.ticket_customer_token(ticket=ticket)])


@pytest.mark.django_db
def test_start_creates_customer_and_chat_ticket_and_remembers_it(client):
    response = client.post(START, {"name": "Ana", "email": "ana@example.com", "body": "Sync is broken"})

    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert (ticket.channel, ticket.customer.email, ticket.customer.name) == ("chat", "ana@example.com", "Ana")
    assert list(ticket.messages.values_list("body", flat=True)) == ["Sync is broken"]
    assert response["Location"].startswith("/chat/c/")
    assert f"/{ticket.pk}/" not in response["Location"]
    assert ticket.reference not in response["Location"]
    cookie = response.cookies["sf_chat"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/chat/"
    # Coming back to /chat/ resumes the open conversation.
    assert client.get(START)["Location"] == response["Location"]


@pytest.mark.django_db
def test_email_can_be_left_out(client):
    client.post(START, {"name": "Bo", "body": "Hello"})
    assert Customer.objects.get().email == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "", "body": "x"}, "Tell us your name"),
        ({"name": "A", "body": ""}, "Write your question"),
        ({"name": "A", "email": "not-an-email", "body": "x"}, "email address looks wrong"),
        ({"name": "A", "body": "x" * 10_001}, "at most 10,000 characters"),
    ],
)
def test_bad_start_says_what_to_fix_and_creates_nothing(client, data, error):
    response = client.post(START, data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert Ticket.objects.count() == Customer.objects.count() == 0


@pytest.mark.django_db
def test_starting_is_rate_limited_per_address(client, settings):
    settings.CHAT_RATE_START_PER_IP = "2/600"
    for n in range(2):
        assert client.post(START, {"name": "A", "body": f"q{n}"}).status_code == 302
    response = client.post(START, {"name": "A", "body": "q3"})
    assert response.status_code == 429
    assert "Too many new conversations" in response.content.decode()
    assert Ticket.objects.count() == 2


@pytest.mark.django_db
def test_conversation_page_shows_public_messages_only(client, ticket, agent):
    services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="visible reply")
    services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="secret", is_internal=True)

    html = client.get(link(ticket)).content.decode()

    assert "It broke." in html
    assert "visible reply" in html
    assert "secret" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["nope", "x" * 300, "InRhbXBlcmVkIg:1vQ2x3:AAAA"])
def test_a_bad_link_is_a_404(client, token):
    response = client.get(f"/chat/c/{token}/")
    assert response.status_code == 404


@pytest.mark.django_db
def test_a_link_with_a_nul_is_a_400(client):
    assert client.get("/chat/c/%00/").status_code == 400


@pytest.mark.django_db
def test_send_without_javascript_posts_and_redirects_to_the_message(client, ticket):
    response = client.post(link(ticket, "send"), {"body": "plain form", "client_id": ""})
    assert response.status_code == 302
    assert response["Location"].endswith("#msg-2")
    assert ticket.messages.get(seq=2).body == "plain form"


@pytest.mark.django_db
def test_send_from_the_page_script_returns_the_fragment_and_is_idempotent(client, ticket):
    for _ in range(2):
        response = client.post(link(ticket, "send"), {"body": "fallback", "client_id": "f-1"}, **HTMX)
        assert response.status_code == 200
        assert 'data-client-id="f-1"' in response.content.decode()
    assert ticket.messages.count() == 2


@pytest.mark.django_db
def test_failed_send_without_javascript_keeps_the_draft(client, ticket, settings):
    settings.CHAT_RATE_PER_CONVERSATION = "0/60"
    response = client.post(link(ticket, "send"), {"body": "my long careful text"})
    assert response.status_code == 429
    assert response["Retry-After"]
    html = response.content.decode()
    assert "my long careful text" in html
    assert "Too many messages" in html
    assert ticket.messages.count() == 1


@pytest.mark.django_db
def test_send_to_a_closed_ticket_is_refused_with_a_message(client, ticket):
    services.ticket_close(ticket=ticket)
    response = client.post(link(ticket, "send"), {"body": "hello?", "client_id": "c"}, **HTMX)
    assert response.status_code == 400
    assert "closed" in response.content.decode()
    assert ticket.messages.count() == 1


@pytest.mark.django_db
def test_catch_up_returns_messages_after_a_sequence(client, ticket, agent):
    for n in range(3):
        services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body=f"m{n}")
    html = client.get(link(ticket, "messages"), {"after": 2}).content.decode()
    assert 'data-seq="3"' in html
    assert 'data-seq="4"' in html
    assert 'data-seq="2"' not in html
    assert client.get(link(ticket, "messages"), {"after": "x"}).status_code == 400


@pytest.mark.django_db
def test_rating_flow(client, ticket, agent):
    early = client.post(link(ticket, "rate"), {"score": "5"}, **HTMX)
    assert early.status_code == 400
    assert "once it is resolved" in early.content.decode()

    services.ticket_resolve(ticket=ticket, actor=agent)
    bad = client.post(link(ticket, "rate"), {"score": "9"}, **HTMX)
    assert bad.status_code == 400
    assert "Pick a rating from 1 to 5" in bad.content.decode()

    ok = client.post(link(ticket, "rate"), {"score": "4", "comment": "Quick, thanks"}, **HTMX)
    assert ok.status_code == 200
    assert "You rated this conversation 4 out of 5" in ok.content.decode()
    ticket.refresh_from_db()
    assert (ticket.csat_score, ticket.csat_comment) == (4, "Quick, thanks")


@pytest.mark.django_db
def test_pages_send_a_strict_content_security_policy(client, ticket):
    for url in (START, link(ticket), reverse("admin:login")):
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy


@pytest.mark.django_db
def test_a_message_never_leaks_into_another_conversation(client, department):
    mine, theirs = make_ticket(department=department, body="mine"), make_ticket(department=department, body="theirs")
    client.post(link(mine, "send"), {"body": "hello mine"})
    assert "theirs" not in client.get(link(mine)).content.decode()
    assert Message.objects.filter(ticket=theirs).count() == 1


@pytest.mark.django_db
def test_email_later_is_saved_on_the_customer(client):
    client.post(START, {"name": "Kim", "body": "hi"})
    ticket = Ticket.objects.get()
    response = client.post(link(ticket, "email"), {"email": "kim@example.com"}, **HTMX)
    assert response.status_code == 200
    assert "Replies also go to kim@example.com" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.customer.email == "kim@example.com"
    assert ticket.events.filter(field="customer_email", to_value="kim@example.com").count() == 1


@pytest.mark.django_db
def test_email_later_with_a_known_address_moves_the_ticket_to_that_customer(client):
    known = Customer.objects.create(name="Kim", email="kim@example.com")
    client.post(START, {"name": "Kim", "body": "hi"})
    ticket = Ticket.objects.get()
    client.post(link(ticket, "email"), {"email": "KIM@example.com"}, **HTMX)
    ticket.refresh_from_db()
    assert ticket.customer == known


@pytest.mark.django_db
@pytest.mark.parametrize(("email", "error"), [("", "Type your email"), ("nope", "looks wrong")])
def test_bad_email_later_says_what_is_wrong(client, ticket, email, error):
    ticket.customer.email = ""
    ticket.customer.save()
    response = client.post(link(ticket, "email"), {"email": email}, **HTMX)
    assert response.status_code == 400
    assert error in response.content.decode()
    ticket.customer.refresh_from_db()
    assert ticket.customer.email == ""
