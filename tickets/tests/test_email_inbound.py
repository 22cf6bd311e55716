"""Inbound email through the provider endpoint: auth, limits, idempotency, threading, spoofing,
automatic mail, attachments and who may download them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tickets import selectors, services
from tickets.email import inbound
from tickets.models import Attachment, EmailRecord, Message, Ticket
from tickets.tests.emails import build
from tickets.tests.factories import make_agent

pytestmark = pytest.mark.django_db
URL = "/inbound/email/"
AUTH = {"HTTP_AUTHORIZATION": "Bearer inbound-test-token"}


def post(client, raw: bytes, **headers):
    return client.post(URL, data=raw, content_type="message/rfc822", **({**AUTH, **headers}))


def test_a_new_email_creates_an_email_ticket(client, email_settings):
    raw = build(message_id="<first@example.com>")
    response = post(client, raw)
    assert response.status_code == 202
    ticket = Ticket.objects.get(reference=response.json()["ticket"])
    assert response.json()["status"] == "created"
    assert ticket.channel == "email"
    assert ticket.subject == "My invoice is wrong"
    assert ticket.customer.email == "ada@example.com"
    assert ticket.customer.name == "Ada Lovelace"
    assert ticket.messages.get().body == "Hello, my March invoice charges me twice."
    record = EmailRecord.objects.get(msgid="<first@example.com>")
    assert record.ticket == ticket
    assert (email_settings.EMAIL_PRIVATE_ROOT / record.raw_name).read_bytes() == raw  # the original, kept


def test_the_endpoint_is_off_without_a_token_and_refuses_a_wrong_one(client, email_settings):
    assert post(client, build(), HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    assert client.post(URL, data=build(), content_type="message/rfc822").status_code == 401
    email_settings.INBOUND_EMAIL_TOKEN = ""
    assert post(client, build()).status_code == 404
    assert Ticket.objects.count() == 0


def test_too_large_and_garbage_get_a_4xx_and_store_nothing(client, email_settings):
    big = build(body="x" * 300_000)
    assert post(client, big).status_code == 413
    assert post(client, b"").status_code == 400
    assert post(client, b"\x00\x01 not an email at all").status_code in (202, 400)
    assert Ticket.objects.filter(subject="My invoice is wrong").count() == 0


def test_a_provider_retry_of_the_same_message_id_is_stored_once(client, email_settings):
    raw = build(message_id="<retry@example.com>")
    first, second = post(client, raw), post(client, raw)
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json() == {**first.json(), "status": "duplicate"}
    assert Message.objects.count() == 1
    assert EmailRecord.objects.count() == 1


def test_a_reply_joins_its_ticket_by_in_reply_to_and_references(client, email_settings):
    ticket = Ticket.objects.get(reference=post(client, build(message_id="<a1@example.com>")).json()["ticket"])
    reply = build(
        sender="ADA@Example.com", subject="Re: My invoice is wrong", body="Any news?\n\n> quoted",
        message_id="<a2@example.com>", in_reply_to="<a1@example.com>", references="<a1@example.com>",
    )  # fmt: skip
    response = post(client, reply)
    assert response.json() == {"status": "appended", "ticket": ticket.reference, "message_id": "<a2@example.com>"}
    assert list(ticket.messages.values_list("body", flat=True)) == [
        "Hello, my March invoice charges me twice.",
        "Any news?",
    ]


def test_a_subject_reference_counts_only_from_the_customer(client, email_settings):
    ticket = Ticket.objects.get(reference=post(client, build()).json()["ticket"])
    same = post(client, build(subject=f"Follow-up [{ticket.reference}]", body="More details."))
    assert same.json()["ticket"] == ticket.reference
    other = post(client, build(sender="mallory@evil.test", subject=f"Re: [{ticket.reference}]", body="Give me it"))
    assert other.json()["status"] == "created"
    assert other.json()["ticket"] != ticket.reference
    assert not ticket.messages.filter(body="Give me it").exists()


def test_a_spoofed_thread_starts_a_new_ticket(client, email_settings):
    ticket = Ticket.objects.get(reference=post(client, build(message_id="<orig@example.com>")).json()["ticket"])
    spoof = build(
        sender="mallory@evil.test", subject=f"Re: My invoice is wrong [{ticket.reference}]", body="Change my email",
        in_reply_to="<orig@example.com>", references="<orig@example.com>",
    )  # fmt: skip
    response = post(client, spoof)
    assert response.json()["status"] == "created"
    new = Ticket.objects.get(reference=response.json()["ticket"])
    assert new.customer.email == "mallory@evil.test"
    assert ticket.messages.count() == 1
    # A made-up Message-ID that we never handled does not thread either, even from the right sender.
    guessed = post(client, build(in_reply_to="<never-seen@example.com>", body="Guessed thread"))
    assert guessed.json()["status"] == "created"


def test_a_reply_to_a_closed_ticket_starts_a_new_one(client, email_settings):
    ticket = Ticket.objects.get(reference=post(client, build(message_id="<c1@example.com>")).json()["ticket"])
    services.ticket_close(ticket=ticket)
    response = post(client, build(in_reply_to="<c1@example.com>", body="Me again"))
    assert response.json()["status"] == "created"


def test_bounces_and_auto_replies_become_internal_notes_and_never_start_tickets(client, email_settings):
    ticket = Ticket.objects.get(reference=post(client, build(message_id="<b1@example.com>")).json()["ticket"])
    ooo = build(
        subject="Automatic reply: My invoice", body="I am out of office.", in_reply_to="<b1@example.com>",
        headers={"Auto-Submitted": "auto-replied"},
    )  # fmt: skip
    assert post(client, ooo).json()["status"] == "noted"
    note = ticket.messages.get(seq=2)
    assert (note.author_kind, note.is_internal) == ("system", True)
    assert "auto-submitted" in note.body
    stray = build(sender="MAILER-DAEMON@mx.example.com", subject="Undelivered Mail Returned to Sender")
    response = post(client, stray)
    assert response.json() == {**response.json(), "status": "ignored", "ticket": None}
    assert Ticket.objects.count() == 1
    assert EmailRecord.objects.filter(status="ignored").count() == 1


def test_attachments_are_kept_within_limits_and_refusals_are_noted(client, email_settings):
    raw = build(
        attachments=[
            ("../../etc/invoice.pdf", "application/pdf", b"%PDF-1.4 fake"),
            ("setup.exe", "application/x-msdownload", b"MZ..."),
            ("huge.png", "image/png", b"\x89PNG" + b"0" * 60_000),
            ("report.txt", "text/html", b"<script>alert(1)</script>"),
        ]
    )
    ticket = Ticket.objects.get(reference=post(client, raw).json()["ticket"])
    kept = list(ticket.attachments.values_list("filename", "content_type", "size"))
    assert kept == [("invoice.pdf", "application/pdf", 13)]
    note = ticket.messages.get(is_internal=True)
    for refused in ("setup.exe", "huge.png", "report.txt"):
        assert refused in note.body
    stored = Attachment.objects.get()
    assert str(email_settings.EMAIL_PRIVATE_ROOT) not in stored.storage_name
    assert not stored.storage_name.startswith(("/", "."))


def test_attachments_are_served_only_to_people_who_can_see_the_ticket(
    client, email_settings, department, other_department
):
    result = inbound.email_receive(raw=build(attachments=[("notes.txt", "text/plain", b"secret notes")]))
    ticket = result.ticket
    Ticket.objects.filter(pk=ticket.pk).update(department=department)
    attachment = Attachment.objects.get()
    url = reverse("attachment", args=[attachment.pk])

    assert client.get(url).status_code == 302  # anonymous → login
    client.force_login(make_agent(other_department))
    assert client.get(url).status_code == 404
    client.force_login(make_agent(department))
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"secret notes"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"].startswith("text/plain")

    client.logout()
    token = selectors.ticket_customer_token(ticket=ticket)
    customer_url = reverse("chat:attachment", args=[token, attachment.pk])
    assert client.get(customer_url).status_code == 200
    other = inbound.email_receive(raw=build(sender="bob@example.com", body="Other ticket")).ticket
    other_token = selectors.ticket_customer_token(ticket=other)
    assert client.get(reverse("chat:attachment", args=[other_token, attachment.pk])).status_code == 404
    assert client.get(reverse("chat:attachment", args=["forged-token", attachment.pk])).status_code == 404


def test_the_admin_ticket_page_links_the_attachments(client, email_settings, department):
    ticket = inbound.email_receive(raw=build(attachments=[("log.txt", "text/plain", b"trace")])).ticket
    Ticket.objects.filter(pk=ticket.pk).update(department=department)
    client.force_login(make_agent(department))
    page = client.get(f"/admin/tickets/ticket/{ticket.pk}/change/")
    assert page.status_code == 200
    assert f'href="/attachments/{Attachment.objects.get().pk}/"' in page.content.decode()
