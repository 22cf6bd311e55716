"""Every input surface fed the Big List of Naughty Strings (plus NUL and CR/LF strings of our own).

For each string and surface: never a 5xx; where the text is stored it comes back exactly as sent, or
differs only by the documented normalisation; a refusal is a 4xx (or, in the console's reply box, the
form shown again) with a message. The normalisations, each from the code that does it:

- NUL: refused with a 400 by ``supportflow.middleware`` (forms, queries) and the API's JSON parser.
- message bodies, names, CSAT comments: surrounding whitespace trimmed (``str.strip``, in the forms
  and ``services._clean_body``); a body blank after trimming is refused.
- ticket subjects: whitespace runs collapsed to one space (``services.ticket_create``); a chat ticket
  has no subject, so it is the first line of the first message (80 characters).
- email headers (subject, sender name): control characters become spaces, whitespace collapsed
  (``email.parse.one_line``); the body: CR/LF → LF, quoted reply lines dropped (``strip_quoted``);
  attachment names made safe (``email.attachments.safe_filename``: no path, no control characters).
- KB uploads: the file name is kept to its last 120 characters and 200 UTF-8 bytes (Django keeps
  only what follows the last slash); the body is trimmed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email import encoders
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from urllib.parse import quote, urlsplit

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from knowledge import services as kb_services
from knowledge.models import Article, IngestJob
from supportflow.api.keys import api_key_create
from supportflow.asgi import application
from tickets import selectors
from tickets.email import attachments, parse
from tickets.models import Attachment, Message, Ticket
from tickets.services import MESSAGE_MAX_LENGTH
from tickets.tests.factories import DepartmentFactory, make_agent, make_manager, make_ticket, set_status
from tickets.tests.naughty_data import naughty_strings

UNLIMITED = "1000000/60"
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


@dataclass
class Tally:
    """What happened to each string on one surface; ``problems`` must stay empty."""

    surface: str
    stored_lossless: int = 0
    normalised: int = 0
    refused: int = 0
    answered: int = 0
    problems: list[str] = field(default_factory=list)

    def status(self, index: int, text: str, response, allowed=(200, 302)) -> bool:
        """True when the response is one of ``allowed``; a 4xx is a counted refusal if it says why."""
        code = response.status_code
        if code in allowed:
            return True
        if 400 <= code < 500:
            body = response.content.decode("utf-8", "replace").strip()
            if body:
                self.refused += 1
            else:
                self.problems.append(f"#{index} {text!r}: {code} without a message")
        else:
            self.problems.append(f"#{index} {text!r}: HTTP {code}")
        return False

    def compare(self, index: int, sent: str, stored: str, expected: str) -> None:
        if stored != expected:
            self.problems.append(f"#{index} {sent!r}: stored {stored!r}, expected {expected!r}")
        elif stored == sent:
            self.stored_lossless += 1
        else:
            self.normalised += 1

    def check(self) -> None:
        print(
            f"\n[naughty] {self.surface}: lossless={self.stored_lossless} normalised={self.normalised} "
            f"refused={self.refused} answered={self.answered} problems={len(self.problems)}"
        )
        assert not self.problems, "\n".join(self.problems[:40])


@pytest.fixture
def strings() -> list[str]:
    return naughty_strings()


@pytest.fixture
def no_rate_limits(settings):
    settings.CHAT_RATE_START_PER_IP = settings.CHAT_RATE_PER_IP = UNLIMITED
    settings.CHAT_RATE_PER_CONVERSATION = UNLIMITED
    settings.API_RATE = "1000000/min"
    return settings


def _web() -> Client:
    return Client(raise_request_exception=False)


def _token_from(response) -> str:
    return urlsplit(response["Location"]).path.rstrip("/").split("/")[-1]


def _first_line(body: str) -> str:
    return body.splitlines()[0][:80]


def batches(strings: list[str], *, limit: int, size: int = 24) -> list[tuple[int, str]]:
    """Consecutive strings joined one per line, at most ``size`` of them and ``limit`` characters: one
    stored text carries them all, so its round trip checks each one but its first and last only
    inside the text (the per-string surfaces check trimming). NUL strings are left out (refused)."""
    out: list[tuple[int, str]] = []
    current: list[str] = []
    first = 0
    for i, text in enumerate(strings):
        if "\x00" in text:
            continue
        if current and (len(current) == size or len("\n".join([*current, text])) > limit):
            out.append((first, "\n".join(current)))
            current = []
        if not current:
            first = i
        current.append(text)
    if current:
        out.append((first, "\n".join(current)))
    return out


def partition(strings: list[str], *, limit: int) -> list[tuple[int, list[str]]]:
    """The strings (NUL ones left out) in consecutive runs of at most ``limit`` characters joined."""
    out: list[tuple[int, list[str]]] = []
    for i, text in enumerate(strings):
        if "\x00" in text:
            continue
        if out and len(" ".join([*out[-1][1], text])) <= limit:
            out[-1][1].append(text)
        else:
            out.append((i, [text]))
    return out


def packs(strings: list[str], *, limit: int, sep: str = " ") -> list[tuple[int, str]]:
    """Like ``batches`` for one-line fields (subjects, names, queries): strings joined by ``sep``."""
    return [(i, text.replace("\n", sep)) for i, text in batches(strings, limit=limit, size=12)]


def blanks(strings: list[str]) -> list[tuple[int, str]]:
    """The strings a trimmed field refuses, and the NUL ones: each sent alone."""
    return [(i, t) for i, t in enumerate(strings) if not t.strip() or "\x00" in t]


def groups(strings: list[str], width: int) -> list[tuple[int, list[str]]]:
    """``width`` strings per request, one per query parameter: every string goes through the endpoint."""
    n = len(strings)
    return [(i, [strings[(i + k) % n] for k in range(width)]) for i in range(0, n, width)]


# --- the customer chat ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_chat_start_form_keeps_name_and_first_message(strings, no_rate_limits):
    tally = Tally("chat start (name + first message + subject)")
    web = _web()
    for i, text in enumerate(strings):
        response = web.post(reverse("chat:start"), {"name": text, "email": "", "body": text})
        if not tally.status(i, text, response, allowed=(302,)):
            continue
        ticket = selectors.ticket_get_for_customer(token=_token_from(response))
        body = ticket.messages.get(seq=1).body
        tally.compare(i, text, body, text.strip())
        tally.compare(i, text, ticket.customer.name, text.strip())
        tally.compare(i, text, ticket.subject, _first_line(text.strip()))
    tally.check()
    assert tally.stored_lossless > 0


@pytest.mark.django_db
def test_chat_send_fallback_and_email_later_form(strings, no_rate_limits):
    """Batches as plain POSTs and htmx posts (alternately), the blank and NUL strings alone; the
    email-later form (an EmailField) with every string, refused or stored as given."""
    tally = Tally("chat send (HTTP fallback, plain + htmx) + email-later form")
    ticket = make_ticket(subject="Naughty chat")
    token = selectors.ticket_customer_token(ticket=ticket)
    web = _web()
    for n, (i, text) in enumerate([*batches(strings, limit=MESSAGE_MAX_LENGTH), *blanks(strings)]):
        before = Message.objects.filter(ticket=ticket).count()
        htmx = {"HTTP_HX_REQUEST": "true"} if n % 2 else {}
        response = web.post(reverse("chat:send", args=[token]), {"body": text, "client_id": f"n{n}"}, **htmx)
        if tally.status(i, text, response, allowed=(200,) if htmx else (302,)):
            tally.compare(i, text, Message.objects.get(ticket=ticket, client_msg_id=f"n{n}").body, text.strip())
        elif Message.objects.filter(ticket=ticket).count() != before:
            tally.problems.append(f"#{i} {text!r}: refused but stored")
    for i, text in enumerate(strings):
        email = web.post(reverse("chat:email", args=[token]), {"email": text}, HTTP_HX_REQUEST="true")
        tally.status(i, text, email, allowed=(200,))
    tally.check()


@pytest.mark.django_db
def test_csat_comment(strings):
    """Every string in a comment (batched: a comment is at most 2,000 characters), plus each of the
    blank-after-trimming ones alone."""
    tally = Tally("CSAT comment")
    ticket = set_status(make_ticket(subject="Rated"), Ticket.Status.RESOLVED)
    token = selectors.ticket_customer_token(ticket=ticket)
    web = _web()
    for i, text in [*batches(strings, limit=2000), *blanks(strings)]:
        response = web.post(reverse("chat:rate", args=[token]), {"score": "4", "comment": text})
        if tally.status(i, text, response, allowed=(302,)):
            ticket.refresh_from_db()
            tally.compare(i, text, ticket.csat_comment, text.strip())
    tally.check()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
def test_websocket_messages(strings, no_rate_limits):
    """One conversation, every string sent over its websocket; each answer (the broadcast copy or an
    error) carries the string's client id."""
    ticket = make_ticket(subject="Naughty socket")
    token = selectors.ticket_customer_token(ticket=ticket)
    frames: dict[int, str] = {}

    async def scenario():
        socket = WebsocketCommunicator(application, f"/ws/chat/{token}/", headers=[(b"origin", b"http://localhost")])
        socket.scope["client"] = ("10.9.9.9", 5000)
        connected, _ = await socket.connect()
        assert connected
        for i, text in enumerate(strings):
            await socket.send_to(text_data=json.dumps({"type": "message", "body": text, "client_id": f"w{i}"}))
            for _ in range(20):
                frame = await socket.receive_from(timeout=5)
                if f'data-client-id="w{i}"' in frame:
                    frames[i] = frame
                    break
        await socket.disconnect()

    async_to_sync(scenario)()
    tally = Tally("websocket consumer")
    stored = dict(Message.objects.filter(ticket=ticket).exclude(client_msg_id="").values_list("client_msg_id", "body"))
    for i, text in enumerate(strings):
        frame = frames.get(i, "")
        if f"w{i}" in stored:
            tally.compare(i, text, stored[f"w{i}"], text.replace("\x00", "").strip())
        elif "chat-error" in frame and not text.replace("\x00", "").strip():
            tally.refused += 1
        else:
            tally.problems.append(f"#{i} {text!r}: neither stored nor refused ({frame[:120]!r})")
    tally.check()


# --- the agent console ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_agent_reply_and_internal_note(strings):
    """Batches of strings as replies and internal notes (alternately), and the blank ones alone."""
    department = DepartmentFactory()
    agent = make_agent(department)
    ticket = make_ticket(department=department, subject="Console")
    web = _web()
    web.force_login(agent)
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    tally = Tally("console reply / internal note")
    for n, (i, text) in enumerate([*batches(strings, limit=MESSAGE_MAX_LENGTH), *blanks(strings)]):
        internal = n % 2 == 1
        before = ticket.messages.count()
        data = {"_reply": "1", "body": text, "is_internal": "on" if internal else "", "then_status": ""}
        response = web.post(url, data)
        if response.status_code == 200:  # the page again, with the form's error
            if 'class="errornote"' in response.content.decode() and ticket.messages.count() == before:
                tally.refused += 1
            else:
                tally.problems.append(f"#{i} {text!r}: 200 without an error or with a stored message")
            continue
        if tally.status(i, text, response, allowed=(302,)):
            message = ticket.messages.order_by("-seq").first()
            assert message.is_internal is internal
            tally.compare(i, text, message.body, text.strip())
    tally.check()


# --- REST API ---------------------------------------------------------------------------------------


def _api(user) -> APIClient:
    _, secret = api_key_create(
        name="naughty", user=user, scopes=["tickets:read", "tickets:write", "kb:read", "analytics:read"]
    )
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _subject(text: str) -> str:
    return " ".join(text.split())[:255]


@pytest.mark.django_db
def test_api_ticket_create_message_add_and_search(strings, no_rate_limits):
    """Tickets whose subject, first message and customer name carry packed strings (and the blank
    and NUL ones alone); messages in batches; several strings per request in query parameters."""
    department = DepartmentFactory(slug="naughty")
    api = _api(make_manager(department))
    thread = make_ticket(department=department, subject="API thread")
    created = Tally("API ticket create (subject, body, customer name)")
    added = Tally("API message add")
    searched = Tally("API list/search/filter params, KB search")
    runs = [(i, " ".join(run), "\n".join(run)) for i, run in partition(strings, limit=190)]
    for i, one_line, text in [*runs, *((i, t, t) for i, t in blanks(strings))]:
        payload = {"subject": one_line, "body": text, "customer_name": one_line, "department": "naughty"}
        response = api.post("/api/v1/tickets/", payload, format="json")
        if created.status(i, text, response, allowed=(201,)):
            ticket = Ticket.objects.select_related("customer").get(reference=response.json()["reference"])
            body = text.strip()
            created.compare(i, text, ticket.messages.get(seq=1).body, body)
            created.compare(i, one_line, ticket.subject, _subject(one_line) or _first_line(body))
            created.compare(i, one_line, ticket.customer.name, one_line.strip())
            created.compare(i, text, response.json()["subject"], ticket.subject)

    for n, (i, text) in enumerate([*batches(strings, limit=MESSAGE_MAX_LENGTH), *blanks(strings)]):
        response = api.post(
            f"/api/v1/tickets/{thread.reference}/messages/", {"body": text, "internal": n % 2 == 1}, format="json"
        )
        if added.status(i, text, response, allowed=(201,)):
            seq = response.json()["seq"]
            added.compare(i, text, thread.messages.get(seq=seq).body, text.strip())
            added.compare(i, text, response.json()["body"], text.strip())

    for n, (i, group) in enumerate(groups(strings, 16)):
        a, b, c, d, e, f, g, h, j, k, m, o, q, r, t, u = group
        for path, params in [
            (
                "/api/v1/tickets/",
                {"search": a, "ordering": b, "status": c, "priority": d, "channel": e, "department": f},
            ),
            ("/api/v1/tickets/", {"assignee": g, "escalated": h}),
            ("/api/v1/customers/", {"search": j, "ordering": k}),
            ("/api/v1/kb/articles/", {"search": m, "ordering": o}),
            ("/api/v1/kb/search/", {"q": " ".join(group), "language": q, "k": "3"}),
            ("/api/v1/kb/search/" if n % 2 else "/api/v1/analytics/summary/", {"q": "sync", "k": r, "days": r}),
        ]:
            if searched.status(i, a, api.get(path, params), allowed=(200,)):
                searched.answered += 1
        if searched.status(i, t, api.get(f"/api/v1/tickets/{quote(t + u, safe='')}/"), allowed=(200, 404)):
            searched.answered += 1
    for tally in (created, added, searched):
        tally.check()


# --- email ------------------------------------------------------------------------------------------


def _mime(i: int, subject: str, name: str, body: str, filenames: list[str]) -> bytes:
    """A stdlib-built email: sender name and subject RFC 2047-encoded, attachment names RFC 2231-encoded,
    as real mail clients send them."""
    msg = MIMEMultipart()
    msg["From"] = f"{Header(name, 'utf-8').encode()} <naughty{i}@example.com>"
    msg["To"] = "support@help.example.com"
    msg["Subject"] = Header(subject, "utf-8")
    msg["Message-ID"] = f"<naughty-{i}@example.com>"
    msg.attach(MIMEText(body, "plain", "utf-8"))
    for filename in filenames:
        part = MIMEBase("text", "plain")
        part.set_payload(b"attached text")
        encoders.encode_base64(part)
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
        msg.attach(part)
    return msg.as_bytes()


def _one_line(text: str, limit: int = parse.MAX_HEADER_CHARS) -> str:
    return " ".join(CONTROL.sub(" ", text).split())[:limit]


@pytest.mark.django_db
def test_email_subject_sender_name_body_and_attachment_name(strings, email_settings):
    """Each email carries a run of strings in its subject and sender name (joined by spaces), its body
    (one per line) and its attachments' names (``<string>.txt``)."""
    email_settings.EMAIL_MAX_ATTACHMENTS = 40
    tally = Tally("email inbound (subject, sender name, body, attachment name)")
    web = _web()
    for n, (i, run) in enumerate(partition(strings, limit=190)):
        subject = name = " ".join(run)
        body = "\n".join(run)
        filenames = [f"{t}.txt" for t in run]
        response = web.post(
            "/inbound/email/",
            data=_mime(n, subject, name, body, filenames),
            content_type="message/rfc822",
            HTTP_AUTHORIZATION="Bearer inbound-test-token",
        )
        if not tally.status(i, subject, response, allowed=(202,)):
            continue
        assert response.json()["status"] == "created", response.json()
        ticket = Ticket.objects.select_related("customer").get(reference=response.json()["ticket"])
        tally.compare(i, subject, ticket.subject, _subject(_one_line(subject)) or "(no subject)")
        tally.compare(i, name, ticket.customer.name, _one_line(name, 200))
        text = body.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n").strip()
        tally.compare(
            i,
            body,
            ticket.messages.get(seq=1).body,
            parse.strip_quoted(text) if text else "(No text; see the attached files.)",
        )
        stored = list(Attachment.objects.filter(ticket=ticket).order_by("pk").values_list("filename", flat=True))
        if len(stored) != len(filenames):
            tally.problems.append(f"#{i}: {len(stored)} of {len(filenames)} attachments kept")
            continue
        for sent, kept in zip(filenames, stored, strict=True):
            if CONTROL.search(kept) or "/" in kept or "\\" in kept or kept.startswith(".") or not kept.endswith(".txt"):
                tally.problems.append(f"#{i} {sent!r}: unsafe stored attachment name {kept!r}")
            tally.compare(i, sent, kept, attachments.safe_filename(_one_line(sent, 255), "text/plain"))
    tally.check()


# --- knowledge base ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_kb_upload_file_names_and_content(strings, settings, tmp_path):
    """Files named after packed strings (their number last, so names stay distinct once Django keeps
    only what follows the last slash), each holding a batch of strings."""
    settings.MEDIA_ROOT = tmp_path
    web = _web()
    web.force_login(make_manager())
    tally = Tally("KB upload (file name + content)")
    # Browsers send a file name's quote and line breaks as %22, %0D, %0A (WHATWG multipart form data);
    # Django's test client would put them raw between the quotes.
    browser_name = str.maketrans({'"': "%22", "\r": "%0D", "\n": "%0A"})
    items = [(i, "_".join(run).translate(browser_name), "\n".join(run)) for i, run in partition(strings, limit=90)]
    items += [(1000 + i, "blank", text) for i, text in blanks(strings)]
    for start in range(0, len(items), kb_services.MAX_UPLOAD_FILES):
        chunk = items[start : start + kb_services.MAX_UPLOAD_FILES]
        files = [
            SimpleUploadedFile(f"{name}-n{i:04d}.md", f"# Naughty {i}\n\n{body}\n".encode(), "text/markdown")
            for i, name, body in chunk
        ]
        response = web.post(reverse("admin:knowledge_article_upload"), {"files": files, "default_status": "draft"})
        if not tally.status(start, "batch", response, allowed=(302,)):
            continue
        job = IngestJob.objects.order_by("-pk").first()
        kb_services.ingest_job_run(job_id=job.pk)
        job.refresh_from_db()
        for (i, name, body), result in zip(chunk, job.results, strict=True):
            sent_name = MultiPartParser.sanitize_file_name(None, f"{name}-n{i:04d}.md") or ""
            sent_name = UploadedFile(name=sent_name).name[-120:]  # Django keeps 255 characters, the extension
            while len(sent_name.encode()) > 200:  # file systems count bytes
                sent_name = sent_name[1:]
            text = body.replace("\r\n", "\n").replace("\x00", "").strip()
            if result["outcome"] == "failed":
                if text and "\x00" not in body:
                    tally.problems.append(f"#{i} {body!r}: refused: {result['message']}")
                else:
                    tally.refused += 1
                continue
            article = Article.objects.get(title=f"Naughty {i}")
            tally.compare(i, body, article.body, text)
            tally.compare(i, name, article.source_name, sent_name)
    tally.check()


@pytest.mark.django_db
def test_help_centre_and_suggestion_search(strings):
    """Packed strings as help-centre queries and as chat-suggestion queries (with the place)."""
    tally = Tally("help centre search + chat suggestions")
    web = _web()
    for i, text in [*packs(strings, limit=290), *blanks(strings)]:
        if tally.status(i, text, web.get("/help/", {"q": text}), allowed=(200,)):
            tally.answered += 1
        if tally.status(i, text, web.get("/help/suggest/", {"q": text, "place": text}), allowed=(200,)):
            tally.answered += 1
    tally.check()


# --- analytics --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_analytics_filters(strings):
    """Four strings per request (start, end, department, channel) on the overview; every fourth
    request also on a CSV export and the agents page (the same form)."""
    tally = Tally("analytics filters")
    web = _web()
    web.force_login(make_manager())
    for n, (i, (a, b, c, d)) in enumerate(groups(strings, 4)):
        params = {"start": a, "end": b, "department": c, "channel": d}
        urls = ["/analytics/"] + (["/analytics/export/totals.csv", "/analytics/agents/"] if n % 4 == 0 else [])
        for url in urls:
            if tally.status(i, a, web.get(url, params), allowed=(200,)):
                tally.answered += 1
    tally.check()


@pytest.mark.parametrize(
    "name", ["찦차를 타고 온 펲시맨과 쑛다리 똠방각하", "Zoë " * 20, "9" * 96, 'Ada "The Countess" Lovelace']
)
def test_a_long_encoded_sender_name_gets_no_space_where_it_was_folded(name):
    """Mail clients split a long non-ASCII name into several RFC 2047 words; the parser used to keep
    the folding space between them ("똠 방각하")."""
    raw = _mime(0, "s", name, "b", [])
    assert b"?=\n =?" in raw or len(name) < 40
    assert parse.parse(raw).from_name == _one_line(name, 200)
