"""The inbound parser on hand-made edge cases, and the dataset parse run (eval_email) on every public
email folder: no exception, bounded time, agreement with each manifest's reference parse."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command

from tickets.email import parse
from tickets.tests.emails import build

EMAIL_FOLDERS = sorted(settings.DATASETS_DIR.glob("email_*"))


def test_plain_text_is_preferred_and_quoted_history_is_stripped():
    raw = build(
        body="Still broken after the update.\n\nOn Mon, 3 Mar 2025 at 10:00, Support <support@help.example.com> wrote:\n"
        "> Did you try restarting?\n",
        html="<p>HTML version</p>",
    )
    parsed = parse.parse(raw)
    assert parsed.reply_text == "Still broken after the update."
    assert parsed.body_from_html is False


@pytest.mark.parametrize(
    "quote",
    [
        "Am 03.03.2025 um 10:00 schrieb Support <support@help.example.com>:\n> alt",
        "-----Original Message-----\nFrom: Support\nSent: Monday\nSubject: x\n\nold text",
        "From: Support <support@help.example.com>\nSent: Monday, March 3, 2025 10:00\nTo: Ada\n\nold text",
        "> only a quoted line\n> and another",
    ],
)
def test_reply_headers_of_common_clients_end_the_new_text(quote):
    parsed = parse.parse(build(body=f"New text here.\n\n{quote}\n"))
    assert parsed.reply_text == "New text here."


def test_a_message_that_is_all_quote_keeps_its_text():
    parsed = parse.parse(build(body="> everything quoted\n"))
    assert parsed.reply_text == "> everything quoted"


def test_html_only_mail_becomes_safe_text_without_scripts():
    html = "<html><head><style>p{}</style></head><body><p>Hello&nbsp;there</p><script>alert(1)</script>" + (
        "<div>" * 3000 + "deep" + "</div>" * 3000 + "<blockquote>old reply</blockquote></body></html>"
    )
    parsed = parse.parse(build(body="", html=html))
    assert parsed.body_from_html is True
    assert "alert" not in parsed.text
    assert "<" not in parsed.reply_text
    assert parsed.reply_text.startswith("Hello\xa0there") or parsed.reply_text.startswith("Hello there")
    assert "deep" in parsed.reply_text
    assert "old reply" not in parsed.reply_text


def test_unknown_and_lying_charsets_decode_without_crashing():
    raw = (
        b"From: =?x-unknown-charset?q?Bj=F6rn?= <bjorn@example.com>\r\n"
        b"Subject: =?ks_c_5601-1987?B?vsiz58fPvLy/5A==?=\r\n"
        b"Message-ID: <charset@example.com>\r\n"
        b'Content-Type: text/plain; charset="utf-8"\r\n\r\n'
        b"Caf\xe9 latin-1 bytes in a utf-8 part\r\n"
    )
    parsed = parse.parse(raw)
    assert parsed.subject == "안녕하세요"
    assert parsed.from_address == "bjorn@example.com"
    assert "Caf" in parsed.text


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "ada@example.com", "auto-submitted"),
        ({"Precedence": "bulk"}, "ada@example.com", "precedence"),
        ({"X-Autoreply": "yes"}, "ada@example.com", "autoreply-header"),
        ({"Return-Path": "<>"}, "ada@example.com", "null-return-path"),
        ({}, "MAILER-DAEMON@mx.example.com", "bounce-sender"),
        ({}, "postmaster@example.com", "bounce-sender"),
        ({"List-Id": "<news.example.com>"}, "ada@example.com", "mailing-list"),
    ],
)
def test_automatic_mail_is_detected(headers, sender, reason):
    assert parse.parse(build(sender=sender, headers=headers)).auto_reason == reason


def test_a_delivery_status_report_is_a_bounce_and_a_normal_mail_is_not():
    report = (
        b"From: Mail System <robot@mx.example.com>\r\nSubject: Undelivered\r\nMessage-ID: <dsn@mx>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; x@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--\r\n"
    )
    assert parse.parse(report).auto_reason == "delivery-report"
    assert parse.parse(build()).auto_reason == ""
    assert parse.parse(build(headers={"Auto-Submitted": "no"})).auto_reason == ""


def test_one_line_removes_every_line_break():
    assert parse.one_line("a\r\nBcc: x@evil.test\u2028b\x00") == "a Bcc: x@evil.test b"


def test_the_email_datasets_are_beside_the_project():
    # Without them the parse run below would have no cases: fail, saying where they should be.
    assert EMAIL_FOLDERS, f"no email_* folders in {settings.DATASETS_DIR} (../shared/datasets beside the project)"


@pytest.mark.parametrize("folder", EMAIL_FOLDERS, ids=lambda p: p.name)
def test_every_dataset_email_parses_within_bounds(folder):
    out = io.StringIO()
    call_command("eval_email", "--data", str(folder), "--quiet", stdout=out)
    figures = json.loads(out.getvalue().strip().splitlines()[-1])
    assert figures["exceptions"] == 0
    assert figures["parsed"] == figures["files"] > 0
    assert figures["cpu_ms_max"] < 5000  # a bound against pathological input, not a speed target
    assert figures["peak_traced_mb_max"] < 200
    assert figures["agreement"]["top_type"] == 1.0
