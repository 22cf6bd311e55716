"""The email channel end to end with real servers on localhost: dovecot (IMAP) holds the support
mailbox, aiosmtpd receives what we send, a real Celery worker runs the tasks.

"Done when": an email put in the mailbox becomes a triaged ticket; an agent's reply in the admin
arrives at the customer threaded under their email.
"""

from __future__ import annotations

import time

import pytest

from tickets import services
from tickets.email import imap, outbound
from tickets.email import tasks as email_tasks
from tickets.models import EmailRecord, Message, Ticket
from tickets.tests.emails import build
from tickets.tests.factories import CustomerFactory, make_agent


def _poll(server) -> dict:
    return imap.imap_poll(url=server.url)


@pytest.mark.django_db
def test_imap_poll_stores_unseen_mail_once_and_marks_it_seen(imap_server, email_settings):
    imap_server.deliver(build(message_id="<imap1@example.com>"))
    imap_server.deliver(build(sender="MAILER-DAEMON@mx.example.com", subject="Undeliverable", body="bounce"))
    assert _poll(imap_server) == {"fetched": 2, "created": 1, "ignored": 1, "refused": 0, "errors": 0}
    assert _poll(imap_server) == {"fetched": 0, "refused": 0, "errors": 0}
    assert all(b"\\Seen" in flags for flags in imap_server.flags())
    ticket = Ticket.objects.get()
    assert (ticket.channel, ticket.customer.email) == ("email", "ada@example.com")


@pytest.mark.django_db
def test_too_large_imap_mail_is_flagged_and_left_on_the_server(imap_server, email_settings):
    imap_server.deliver(build(body="y" * 250_000))
    assert _poll(imap_server)["refused"] == 1
    assert b"\\Flagged" in imap_server.flags()[0]
    assert Ticket.objects.count() == 0


def test_the_beat_task_does_nothing_without_imap_url(settings):
    settings.IMAP_URL = ""
    assert email_tasks.poll_imap() == {"skipped": "IMAP_URL is not set"}


@pytest.mark.django_db
def test_an_agent_reply_goes_out_threaded_with_safe_headers(smtp_server, email_settings, department):
    ticket = services.ticket_create(
        customer=CustomerFactory(email="ada@example.com"), subject="Broken\r\nBcc: victim@evil.test",
        body="x", channel="email", department=department,
    )  # fmt: skip
    EmailRecord.objects.create(
        msgid="<in1@example.com>", direction="in", status="received", ticket=ticket,
        message=ticket.messages.get(), references="<older@example.com>",
    )  # fmt: skip
    message = services.message_create(
        ticket=ticket, author_kind="agent", author_user=make_agent(department), body="Fixed it for you."
    )
    assert outbound.email_reply_send(message_id=message.pk) == "sent"
    assert outbound.email_reply_send(message_id=message.pk) == "sent"  # a rerun sends nothing more
    [mail] = smtp_server.wait_for(1)
    assert len(smtp_server.messages) == 1
    record = EmailRecord.objects.get(message=message)
    assert mail["Message-ID"] == record.msgid
    assert mail["In-Reply-To"] == "<in1@example.com>"
    assert mail["References"] == "<older@example.com> <in1@example.com>"
    assert mail["Subject"] == f"Re: Broken Bcc: victim@evil.test [{ticket.reference}]"
    assert mail["Bcc"] is None
    assert smtp_server.envelopes[0].rcpt_tos == ["ada@example.com"]
    assert "support@help.example.com" in mail["From"]
    assert mail["Auto-Submitted"] is None
    assert "Fixed it for you." in mail.get_content()


@pytest.mark.django_db
def test_ai_replies_are_marked_auto_submitted_and_bounce_addresses_are_never_written_to(smtp_server, email_settings):
    ticket = services.ticket_create(
        customer=CustomerFactory(email="ada@example.com"), subject="Q", body="x", channel="email"
    )
    ai = services.message_create(ticket=ticket, author_kind="ai", body="Here is how.", ai_confidence=0.9)
    assert outbound.email_reply_send(message_id=ai.pk) == "sent"
    assert smtp_server.wait_for(1)[0]["Auto-Submitted"] == "auto-replied"

    daemon = services.ticket_create(
        customer=CustomerFactory(email="mailer-daemon@mx.example.com"), subject="Q", body="x", channel="email"
    )
    reply = services.message_create(ticket=daemon, author_kind="ai", body="Hi", ai_confidence=0.9)
    assert outbound.email_reply_send(message_id=reply.pk) == "skipped"
    chat = services.ticket_create(customer=CustomerFactory(), subject="Q", body="x", channel="chat")
    chat_reply = services.message_create(ticket=chat, author_kind="ai", body="Hi", ai_confidence=0.9)
    assert outbound.email_reply_send(message_id=chat_reply.pk) == "not-email"
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db
def test_escalation_notice_reaches_the_department_by_smtp(smtp_server, email_settings, department):
    department.email = "billing-team@help.example.com"
    department.save()
    ticket = services.ticket_create(
        customer=CustomerFactory(), subject="Refund\nnow", body="x", channel="email", department=department
    )
    assert services.department_notify_escalation(ticket_id=ticket.pk, reason="Customer asked for a human") is True
    [mail] = smtp_server.wait_for(1)
    assert mail["Subject"] == f"[{ticket.reference}] Escalated: Refund now"
    assert smtp_server.envelopes[0].rcpt_tos == ["billing-team@help.example.com"]


@pytest.mark.django_db(transaction=True)
def test_done_when_mail_to_the_mailbox_becomes_a_triaged_ticket_and_the_admin_reply_arrives_threaded(
    imap_server, smtp_server, email_settings, department, celery_worker, client, settings
):
    settings.FEATURE_AI_PIPELINE = True
    customer_mail = build(
        message_id="<done1@example.com>", subject="Cannot log in",
        body="I reset my password twice and still cannot log in to my account. Please help.",
    )  # fmt: skip
    imap_server.deliver(customer_mail)

    settings.IMAP_URL = imap_server.url
    assert email_tasks.poll_imap.delay().get(timeout=60)["created"] == 1  # what beat runs every minute
    ticket = Ticket.objects.get()
    first = ticket.messages.get(seq=1)
    # The worker triages it (local provider): wait for the AI decision on the first message.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ticket.refresh_from_db()
        if ticket.triage:
            break
        time.sleep(0.5)
    assert ticket.triage, "the AI pipeline never triaged the email ticket"
    assert ticket.language
    sent_before = len(smtp_server.messages)  # the AI may have answered by email already

    agent = make_agent(department)
    Ticket.objects.filter(pk=ticket.pk).update(department=department)
    client.force_login(agent)
    response = client.post(
        f"/admin/tickets/ticket/{ticket.pk}/change/", {"_reply": "1", "body": "We unlocked your account."}
    )
    assert response.status_code in (200, 302)
    reply = Message.objects.get(ticket=ticket, author_kind="agent")
    smtp_server.wait_for(sent_before + 1, timeout=60)
    # The acknowledgement of an AI handover ("a person will reply by …") may land after the count above.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("We unlocked" in m.get_content() for m in smtp_server.messages):
        time.sleep(0.1)
    [mail] = [m for m in smtp_server.messages if "We unlocked your account." in m.get_content()]
    assert mail["In-Reply-To"] == "<done1@example.com>"
    assert "<done1@example.com>" in mail["References"]
    assert mail["Subject"] == f"Re: Cannot log in [{ticket.reference}]"
    assert mail["Message-ID"] == EmailRecord.objects.get(message=reply).msgid
    assert first.email.msgid == "<done1@example.com>"
