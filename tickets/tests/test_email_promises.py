"""Promises kept (issue 17): agents' chat replies reach the customer by email, threaded and unsubscribable, and
the CSAT survey reaches email and API tickets — with the real SMTP server (aiosmtpd), the real inbound pipeline
and, where it says "done when", a real Celery worker running the tasks.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from tickets import selectors, services
from tickets.email import inbound, links, outbound, surveys
from tickets.email import tasks as email_tasks
from tickets.models import Customer, EmailRecord, Message, Ticket, TicketEvent
from tickets.tests.emails import build
from tickets.tests.factories import CustomerFactory, make_agent, make_manager
from tickets.tests.mailservers import free_port

SITE = "https://support.example.com"
RATE_LINK = re.compile(r"https://support\.example\.com(/email/rate/[^\s?]+/)\?score=(\d)")


@pytest.fixture
def site(settings, email_settings):
    settings.SITE_URL = SITE
    settings.CSAT_SURVEY_DELAY_SECONDS = 0
    return settings


def _path(url: str) -> str:
    return urlsplit(url.strip().strip("<>")).path


def _chat_ticket(department, email: str = "ada@example.com") -> Ticket:
    customer = CustomerFactory(email=email, name="Ada")
    return services.ticket_create(
        customer=customer, subject="Notes stopped syncing", body="My notes stopped syncing.", department=department
    )


def _agent_reply(ticket: Ticket, agent, body: str, **kwargs) -> Message:
    return services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body=body, **kwargs)


def _one_click(url: str):
    """What a mail client's "Unsubscribe" button sends (RFC 8058): a POST without cookies or CSRF token."""
    return Client(enforce_csrf_checks=True).post(
        _path(url), data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )


@pytest.mark.django_db(transaction=True)
def test_done_when_an_agents_chat_reply_is_emailed_threaded_and_the_customers_email_reply_lands_in_the_chat(
    smtp_server, site, department, celery_worker
):
    ticket = _chat_ticket(department, email="")
    token = selectors.ticket_customer_token(ticket=ticket)
    customer = Client()
    # The customer leaves an address on the chat page, which then promises "Replies also go to …".
    assert customer.post(reverse("chat:email", args=[token]), {"email": "ada@example.com"}).status_code == 302
    assert "Replies also go to ada@example.com." in customer.get(reverse("chat:conversation", args=[token])).text

    agent = make_agent(department, username="alice")
    agent.first_name = "Alice"
    agent.save()
    console = Client()
    console.force_login(agent)
    response = console.post(f"/admin/tickets/ticket/{ticket.pk}/change/", {"_reply": "1", "body": "Sync is fixed."})
    assert response.status_code in (200, 302)
    reply = Message.objects.get(ticket=ticket, author_kind="agent")

    [mail] = smtp_server.wait_for(1, timeout=60)
    assert smtp_server.envelopes[0].rcpt_tos == ["ada@example.com"]
    assert mail["Message-ID"] == EmailRecord.objects.get(message=reply).msgid
    assert mail["Subject"] == f"Re: Notes stopped syncing [{ticket.reference}]"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["List-Unsubscribe"].strip().startswith(f"<{SITE}/email/unsubscribe/")  # folded: a long line
    assert mail["Auto-Submitted"] is None  # a person wrote it
    assert mail["Content-Language"] == "en"
    body = mail.get_content()
    assert f"Alice replied in your conversation {ticket.reference}:" in body
    assert "Sync is fixed." in body
    link = re.search(rf"{re.escape(SITE)}(/chat/c/[^\s]+/)", body).group(1)
    assert "Sync is fixed." in Client().get(link).text  # the link opens the conversation

    # The customer answers from their mail client: the inbound pipeline threads it into the chat ticket.
    answer = build(
        sender="Ada <ada@example.com>", subject=f"Re: {mail['Subject']}", body="Thanks, it works again!",
        message_id="<ada-answer@example.com>", in_reply_to=mail["Message-ID"], references=mail["Message-ID"],
    )  # fmt: skip
    result = inbound.email_receive(raw=answer)
    assert (result.status, result.ticket.pk) == ("appended", ticket.pk)
    assert ticket.messages.order_by("seq").last().body == "Thanks, it works again!"
    assert "Thanks, it works again!" in customer.get(reverse("chat:conversation", args=[token])).text

    # The next reply threads under the customer's email.
    console.post(f"/admin/tickets/ticket/{ticket.pk}/change/", {"_reply": "1", "body": "Glad to hear it."})
    second = smtp_server.wait_for(2, timeout=60)[1]
    assert second["In-Reply-To"] == "<ada-answer@example.com>"
    assert second["References"] == f"{mail['Message-ID']} <ada-answer@example.com>"


@pytest.mark.django_db
def test_a_chat_reply_is_emailed_once_even_when_the_task_runs_again_or_smtp_fails_first(
    smtp_server, site, department, settings
):
    ticket = _chat_ticket(department)
    reply = _agent_reply(ticket, make_agent(department), "Here is the fix.")
    up = settings.EMAIL_PORT
    settings.EMAIL_PORT = free_port()
    with pytest.raises(ConnectionRefusedError):  # nobody listens there: the task's autoretry catches OSError
        email_tasks.send_email_reply(reply.pk)
    assert EmailRecord.objects.get(message=reply).status == EmailRecord.Status.FAILED
    settings.EMAIL_PORT = up
    assert email_tasks.send_email_reply(reply.pk) == "sent"  # the retry
    assert email_tasks.send_email_reply(reply.pk) == "sent"  # a duplicate delivery of the task: nothing more
    smtp_server.wait_for(1)
    assert len(smtp_server.messages) == 1
    assert EmailRecord.objects.filter(message=reply).count() == 1


@pytest.mark.django_db
def test_what_is_not_copied_to_a_chat_customer_by_email(
    smtp_server, site, department, django_capture_on_commit_callbacks
):
    ticket = _chat_ticket(department)
    agent = make_agent(department)
    note = _agent_reply(ticket, agent, "Internal: check the billing system.", is_internal=True)
    ai = services.message_create(ticket=ticket, author_kind="ai", body="Try signing out and in.", ai_confidence=0.9)
    assert outbound.email_reply_send(message_id=note.pk) == "not-email"
    assert outbound.email_reply_send(message_id=ai.pk) == "not-email"  # the AI answers live, on the page
    no_address = _chat_ticket(department, email="")
    _agent_reply(no_address, agent, "Hello.")  # both answered before: the same effects, but for the email
    with django_capture_on_commit_callbacks() as emailed:
        _agent_reply(ticket, agent, "We are on it.")
    with django_capture_on_commit_callbacks() as not_emailed:
        reply = _agent_reply(no_address, agent, "Anyone there?")
    assert len(emailed) == len(not_emailed) + 1  # the email task is not even enqueued without an address
    assert outbound.email_reply_send(message_id=reply.pk) == "skipped"
    assert EmailRecord.objects.get(message=reply).error == "no deliverable address"
    assert smtp_server.messages == []


@pytest.mark.django_db
def test_one_click_unsubscribe_stops_chat_copies_and_surveys_but_not_replies_to_the_customers_own_email(
    smtp_server, site, department
):
    ticket = _chat_ticket(department)
    agent = make_agent(department)
    assert outbound.email_reply_send(message_id=_agent_reply(ticket, agent, "First answer.").pk) == "sent"
    [mail] = smtp_server.wait_for(1)
    url = mail["List-Unsubscribe"]
    customer = Customer.objects.get(email="ada@example.com")

    page = Client().get(_path(url))  # a link scanner (or the customer) opens the link: nothing changes yet
    assert page.status_code == 200
    assert "Stop sending ada@example.com copies" in page.text
    customer.refresh_from_db()
    assert customer.email_unsubscribed_at is None

    response = _one_click(url)
    assert response.status_code == 200
    assert response.text == "You are unsubscribed."
    customer.refresh_from_db()
    first_time = customer.email_unsubscribed_at
    assert first_time is not None
    assert _one_click(url).status_code == 200  # clients may POST twice; the first time is kept
    customer.refresh_from_db()
    assert customer.email_unsubscribed_at == first_time

    chat_page = Client().get(reverse("chat:conversation", args=[selectors.ticket_customer_token(ticket=ticket)]))
    assert "ada@example.com is unsubscribed from our emails: replies appear here only." in chat_page.text
    later = _agent_reply(ticket, agent, "Second answer.")
    assert outbound.email_reply_send(message_id=later.pk) == "skipped"
    assert EmailRecord.objects.get(message=later).error == "unsubscribed"

    by_email = services.ticket_create(customer=customer, subject="Refund", body="x", channel="email")
    assert outbound.email_reply_send(message_id=_agent_reply(by_email, agent, "Refunded.").pk) == "sent"
    services.ticket_resolve(ticket=by_email, actor=agent)
    assert surveys.csat_survey_send(ticket_id=by_email.pk) == "skipped"
    smtp_server.wait_for(2)
    assert [m["Subject"] for m in smtp_server.messages] == [mail["Subject"], f"Re: Refund [{by_email.reference}]"]
    assert smtp_server.messages[1]["List-Unsubscribe"] is None  # the conversation itself is not a notice


@pytest.mark.django_db
def test_the_unsubscribe_page_needs_csrf_for_its_own_form_and_can_subscribe_again(site, department):
    customer = CustomerFactory(email="ada@example.com")
    path = _path(links.unsubscribe_url(customer, language="de"))
    browser = Client(enforce_csrf_checks=True)
    forged = browser.post(path, {"action": "unsubscribe"})
    assert forged.status_code == 403
    customer.refresh_from_db()
    assert customer.email_unsubscribed_at is None

    page = browser.get(path)
    assert page.headers["Content-Language"] == "de"  # the language of the email it came from
    csrf = browser.cookies["csrftoken"].value
    assert browser.post(path, {"action": "unsubscribe", "csrfmiddlewaretoken": csrf}).status_code == 302
    customer.refresh_from_db()
    assert customer.email_unsubscribed_at is not None
    assert browser.post(path, {"action": "resubscribe", "csrfmiddlewaretoken": csrf}).status_code == 302
    customer.refresh_from_db()
    assert customer.email_unsubscribed_at is None
    assert browser.post(path, {"action": "nonsense", "csrfmiddlewaretoken": csrf}).status_code == 400

    tampered = path[:-2] + ("A" if path[-2] != "A" else "B") + "/"
    assert Client().get(tampered).status_code == 404


@pytest.mark.django_db
def test_email_links_are_rate_limited_per_address(site, settings):
    settings.EMAIL_LINK_RATE_PER_IP = "2/60"
    customer = CustomerFactory(email="ada@example.com")
    url = links.unsubscribe_url(customer)
    assert Client().get(_path(url)).status_code == 200
    assert Client().get(_path(url)).status_code == 200
    refused = _one_click(url)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    customer.refresh_from_db()
    assert customer.email_unsubscribed_at is None


@pytest.mark.django_db(transaction=True)
def test_done_when_a_resolved_email_ticket_gets_one_survey_and_a_click_records_the_rating_shown_in_analytics(
    smtp_server, site, department, celery_worker
):
    result = inbound.email_receive(
        raw=build(sender="Ada <ada@example.com>", message_id="<csat1@example.com>", subject="Invoice is wrong")
    )
    ticket = result.ticket
    Ticket.objects.filter(pk=ticket.pk).update(department=department)
    agent = make_agent(department)
    _agent_reply(ticket, agent, "Refunded the second charge.", set_status=Ticket.Status.RESOLVED)

    mails = smtp_server.wait_for(2, timeout=60)  # the reply and the survey, both by the worker
    [survey] = [m for m in mails if m["Subject"].startswith("How did we do?")]
    assert survey["Subject"] == f"How did we do? Invoice is wrong [{ticket.reference}]"
    assert survey["In-Reply-To"] == "<csat1@example.com>"  # threads into the ticket: a reply reopens it
    assert survey["Auto-Submitted"] == "auto-generated"
    assert survey["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert EmailRecord.objects.get(key=f"csat:{ticket.pk}").msgid == survey["Message-ID"]
    body = survey.get_content()
    assert body.startswith("Hello Ada,")
    scores = {int(score): path for path, score in RATE_LINK.findall(body)}
    assert sorted(scores) == [1, 2, 3, 4, 5]

    # Don't send twice: the task again (a retry, a second resolution) sends nothing more.
    assert email_tasks.send_csat_survey(ticket.pk) == "sent"

    browser = Client(enforce_csrf_checks=True)
    page = browser.get(scores[4] + "?score=4")  # the click: a page, nothing recorded yet
    assert page.status_code == 200
    assert 'value="4" required checked' in page.text
    ticket.refresh_from_db()
    assert ticket.csat_score is None
    csrf = browser.cookies["csrftoken"].value
    assert browser.post(scores[4], {"score": "9", "csrfmiddlewaretoken": csrf}).status_code == 400
    sent = browser.post(scores[4], {"score": "4", "comment": "Quick, thanks", "csrfmiddlewaretoken": csrf})
    assert sent.status_code == 302
    assert "Thank you! You rated this conversation 4 out of 5." in browser.get(sent.headers["Location"]).text
    ticket.refresh_from_db()
    assert (ticket.csat_score, ticket.csat_comment) == (4, "Quick, thanks")
    assert TicketEvent.objects.filter(ticket=ticket, kind="csat_recorded", to_value="4").exists()

    manager = Client()
    manager.force_login(make_manager())
    summary = manager.get("/api/v1/analytics/summary/?days=1").json()
    assert (summary["csat_count"], summary["csat_mean"]) == (1, 4.0)
    assert len([m for m in smtp_server.messages if m["Subject"].startswith("How did we do?")]) == 1


@pytest.mark.django_db
def test_a_survey_goes_only_to_resolved_unrated_email_and_api_tickets_in_their_language(smtp_server, site, department):
    customer = CustomerFactory(email="ada@example.com", name="")
    chat = services.ticket_create(customer=customer, subject="Chat", body="x")
    api = services.ticket_create(customer=customer, subject="Über die API", body="x", channel="api", ui_language="de")
    services.ticket_resolve(ticket=chat)
    assert surveys.csat_survey_send(ticket_id=chat.pk) == "not-surveyed"  # chat rates on its own page
    assert surveys.csat_survey_send(ticket_id=api.pk) == "not-needed"  # not resolved (yet)
    services.ticket_resolve(ticket=api)
    assert surveys.csat_survey_send(ticket_id=api.pk) == "sent"
    [mail] = smtp_server.wait_for(1)
    assert mail["Content-Language"] == "de"
    rate = RATE_LINK.search(mail.get_content()).group(1)
    assert Client().get(rate).headers["Content-Language"] == "de"  # the conversation's language
    unsubscribe = Client().get(_path(mail["List-Unsubscribe"]))
    assert unsubscribe.headers["Content-Language"] == "de"
    rated = services.ticket_create(customer=customer, subject="Rated", body="x", channel="email")
    services.ticket_resolve(ticket=rated)
    services.ticket_record_csat(ticket=rated, score=5)
    assert surveys.csat_survey_send(ticket_id=rated.pk) == "not-needed"
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db
def test_a_rating_link_is_its_own_credential(site, department):
    ticket = services.ticket_create(customer=CustomerFactory(), subject="Secret subject", body="x", channel="email")
    rating_token = links.csat_token(ticket)
    assert Client().get(reverse("chat:conversation", args=[rating_token])).status_code == 404  # not a chat link
    chat_token = selectors.ticket_customer_token(ticket=ticket)
    assert Client().get(reverse("email-rate", args=[chat_token])).status_code == 404
    assert Client().get(reverse("email-rate", args=[rating_token + "x"])).status_code == 404
    refused = Client().post(reverse("email-rate", args=[rating_token]), {"score": "3"})  # not resolved yet
    assert refused.status_code == 400
    assert "once it is resolved" in refused.text
    ticket.refresh_from_db()
    assert ticket.csat_score is None
