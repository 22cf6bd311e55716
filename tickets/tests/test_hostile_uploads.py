"""Hostile files and header injection.

- KB uploads (console): wrong or double extensions, oversize and path-traversal names are refused at
  upload (400, nothing stored); content that is not what the name says (an executable as .md, HTML as
  .pdf, a zip bomb or broken XML as .docx) is refused by the worker with a message and no article.
- Email attachments: forbidden types, lying declared types, oversize, zip bombs and traversal names are
  not kept (the internal note says why); kept ones are served only as downloads (``attachment``,
  ``nosniff``, sandbox CSP) and only to people who can see the ticket.
- Outbound mail: CR/LF (and Unicode line breaks) in subjects, names, addresses, reply bodies and
  escalation reasons never become headers or recipients.
"""

from __future__ import annotations

import io
import zipfile
from email import encoders
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from knowledge import ingest
from knowledge import services as kb_services
from knowledge.models import Article, IngestJob
from supportflow.api.keys import api_key_create
from tickets import selectors, services
from tickets.email import attachments, inbound, outbound, storage
from tickets.models import Attachment, Customer, EmailRecord, Message, Ticket
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_agent, make_manager

pytestmark = pytest.mark.django_db

PE_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"This program cannot be run"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + bytes(range(0x20, 0x7F)) * 4
HTML = b"<html><body><script>window.__xss.push('upload')</script><p>Hello</p></body></html>"


def docx_bytes(text: str = "Hello from Word") -> bytes:
    from docx import Document

    buffer = io.BytesIO()
    document = Document()
    document.add_paragraph(text)
    document.save(buffer)
    return buffer.getvalue()


def zip_bomb(*, inner: str, unpacked_mb: int, base: bytes | None = None) -> bytes:
    """A small archive whose ``inner`` member unpacks to ``unpacked_mb`` MB of spaces (written in chunks,
    so building it costs no memory). With ``base`` (a .docx) the other members are kept: a real Word
    file whose document.xml is the bomb."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if base is not None:
            with zipfile.ZipFile(io.BytesIO(base)) as source:
                for info in source.infolist():
                    if info.filename != inner:
                        archive.writestr(info, source.read(info.filename))
        with archive.open(inner, "w", force_zip64=True) as member:
            chunk = b" " * (1 << 20)
            for _ in range(unpacked_mb):
                member.write(chunk)
    return out.getvalue()


def broken_xml_docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx_bytes())) as source, zipfile.ZipFile(out, "w") as archive:
        for info in source.infolist():
            data = source.read(info.filename)
            archive.writestr(info, b"<w:document><unclosed>" if info.filename == "word/document.xml" else data)
    return out.getvalue()


def stored_bytes(name: str) -> bytes:
    with storage.open_file(name) as handle:
        return handle.read()


def files_under(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


# --- knowledge-base uploads -------------------------------------------------------------------------


@pytest.fixture
def manager_web(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    web = Client(raise_request_exception=False)
    web.force_login(make_manager())
    return web


UPLOAD = "admin:knowledge_article_upload"


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("invoice.pdf.exe", PE_EXE, ".exe is not supported"),
        ("payload.md.js", b"alert(1)", ".js is not supported"),
        ("logo.svg", b"<svg onload=alert(1)>", ".svg is not supported"),
        ("archive.zip", b"PK\x03\x04", ".zip is not supported"),
        ("../../etc/passwd", b"root:x:0:0", "no extension is not supported"),
        ("..\\..\\windows\\win.ini", b"[fonts]", ".ini is not supported"),
        ("big.md", b"#" * (ingest.MAX_BYTES + 1), "over the 10 MB limit"),
    ],
)
def test_kb_upload_refuses_wrong_types_double_extensions_traversal_and_oversize(
    manager_web, settings, name, data, says
):
    response = manager_web.post(
        reverse(UPLOAD), {"files": [SimpleUploadedFile(name, data, "text/markdown")], "default_status": "draft"}
    )
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not IngestJob.objects.exists()
    assert files_under(settings.MEDIA_ROOT) == []


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("tool.md", PE_EXE, "binary file, not text"),  # an exe labelled as markdown
        ("notes.txt", ELF, "binary file, not text"),  # an executable with no bytes cp1252 lacks
        ("guide.pdf", HTML, "this is not a PDF file"),  # HTML labelled as PDF
        ("fake.docx", HTML, "not a readable Word (.docx) document"),
        ("broken.docx", broken_xml_docx, "not a readable Word (.docx) document"),
        ("bomb.docx", lambda: zip_bomb(inner="word/document.xml", unpacked_mb=3, base=docx_bytes()), "unpack to more"),
    ],
)
def test_kb_upload_content_that_is_not_what_its_name_says_is_refused_with_a_message(
    manager_web, monkeypatch, name, data, says
):
    """(The bomb limit is lowered to 2 MB here so the test builds a small bomb; the real check below.)"""
    monkeypatch.setattr(ingest, "MAX_UNPACKED_BYTES", 2 * 2**20)
    data = data() if callable(data) else data
    response = manager_web.post(
        reverse(UPLOAD), {"files": [SimpleUploadedFile(name, data, "text/markdown")], "default_status": "published"}
    )
    assert response.status_code == 302
    job = IngestJob.objects.get()
    kb_services.ingest_job_run(job_id=job.pk)  # the worker's task (on commit in production)
    job.refresh_from_db()
    assert [(r["name"], r["outcome"]) for r in job.results] == [(name, "failed")]
    assert says in job.results[0]["message"]
    assert not Article.objects.exists()


def test_kb_upload_double_extension_html_is_read_as_text_and_traversal_names_stay_in_the_job_folder(
    manager_web, settings
):
    """``x.md.html`` is an HTML file (its last extension) and is ingested as one: its text only, never
    its markup or scripts. A ``../`` name is reduced to its last part inside the job's folder."""
    files = [
        SimpleUploadedFile("x.md.html", HTML, "text/markdown"),
        SimpleUploadedFile("../../../../tmp/evil-traversal.md", b"# Traversal\n\nStays put.", "text/markdown"),
    ]
    response = manager_web.post(reverse(UPLOAD), {"files": files, "default_status": "draft"})
    assert response.status_code == 302
    job = IngestJob.objects.get()
    assert files_under(settings.MEDIA_ROOT) == [
        f"kb_uploads/{job.pk}/00-x.md.html",
        f"kb_uploads/{job.pk}/01-evil-traversal.md",
    ]
    kb_services.ingest_job_run(job_id=job.pk)
    html_article = Article.objects.get(source_name="x.md.html")
    assert html_article.body == "Hello"
    assert Article.objects.get(source_name="evil-traversal.md").body == "Stays put."


def test_docx_zip_bomb_is_refused_before_it_is_unpacked(monkeypatch):
    """At the real 50 MB limit: the declared sizes are checked first, python-docx never sees it."""
    import docx

    monkeypatch.setattr(docx, "Document", lambda *a, **k: pytest.fail("the bomb reached python-docx"))
    with pytest.raises(ingest.IngestError, match="unpack to more than"):
        ingest.parse("bomb.docx", zip_bomb(inner="word/document.xml", unpacked_mb=60))


# --- email attachments ------------------------------------------------------------------------------


def mime_with(attachments: list[tuple[str, str, bytes]], *, msgid: str = "<hostile@example.com>") -> bytes:
    msg = MIMEMultipart()
    msg["From"] = "Mallory <mallory@example.com>"
    msg["To"] = "support@help.example.com"
    msg["Subject"] = "Files"
    msg["Message-ID"] = msgid
    msg.attach(MIMEText("See the files.", "plain", "utf-8"))
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        part = MIMEBase(maintype, subtype)
        part.set_payload(data)
        encoders.encode_base64(part)
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", filename))
        msg.attach(part)
    return msg.as_bytes()


HOSTILE_ATTACHMENTS = [
    ("invoice.pdf.exe", "application/octet-stream", PE_EXE, "file type .exe is not accepted"),
    ("x.md.html", "text/html", HTML, "file type .html is not accepted"),
    ("evil.svg", "image/svg+xml", b"<svg onload=alert(1)>", "file type .svg is not accepted"),
    ("run.js", "application/javascript", b"alert(1)", "file type .js is not accepted"),
    ("setup.bat", "text/plain", b"del *", "file type .bat is not accepted"),
    ("report.pdf", "text/html", HTML, "declared type text/html is not accepted"),
    ("photo.png", "application/x-msdownload", PE_EXE, "declared type application/x-msdownload is not accepted"),
    ("../../etc/passwd", "application/octet-stream", b"root:x:0:0", "passwd.bin: file type .bin is not accepted"),
    ("..\\..\\windows\\win.ini", "text/plain", b"[fonts]", "win.ini: file type .ini is not accepted"),
    ("huge.txt", "text/plain", b"x" * 60_000, "larger than 50,000 bytes"),
    ("bomb.zip", "application/zip", None, "a zip bomb"),  # built in the test, against a lowered limit
    ("fake.docx", "application/octet-stream", HTML, "not a valid archive"),
]


def test_email_attachments_of_forbidden_or_lying_types_oversize_bombs_and_traversal_are_not_kept(
    email_settings, settings, monkeypatch
):
    settings.EMAIL_MAX_ATTACHMENTS = 20
    settings.EMAIL_MAX_MESSAGE_BYTES = 2_000_000
    monkeypatch.setattr(attachments, "MAX_UNPACKED_BYTES", 2 * 2**20)
    bomb = zip_bomb(inner="zeros.txt", unpacked_mb=3)
    assert len(bomb) < 20_000
    kept = [("notes.txt", "text/plain", b"plain notes"), ("scan.pdf", "application/pdf", b"%PDF-1.4 scan")]
    raw = mime_with([(n, t, d if d is not None else bomb) for n, t, d, _ in HOSTILE_ATTACHMENTS] + kept)
    result = inbound.email_receive(raw=raw)
    assert result.status == "created"
    stored = Attachment.objects.filter(ticket=result.ticket).order_by("pk")
    assert [(a.filename, a.content_type) for a in stored] == [
        ("notes.txt", "text/plain"),
        ("scan.pdf", "application/pdf"),
    ]
    note = Message.objects.get(ticket=result.ticket, is_internal=True, author_kind="system").body
    for _, _, _, reason in HOSTILE_ATTACHMENTS:
        assert reason in note
    on_disk = files_under(email_settings.EMAIL_PRIVATE_ROOT / "attachments")
    assert len(on_disk) == 2
    assert all(stored_bytes(a.storage_name) in (b"plain notes", b"%PDF-1.4 scan") for a in stored)


def test_a_normal_docx_and_zip_are_still_kept(email_settings):
    small_zip = io.BytesIO()
    with zipfile.ZipFile(small_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    raw = mime_with(
        [
            ("letter.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx_bytes()),
            ("logs.zip", "application/zip", small_zip.getvalue()),
        ]
    )
    result = inbound.email_receive(raw=raw)
    assert sorted(Attachment.objects.filter(ticket=result.ticket).values_list("filename", flat=True)) == [
        "letter.docx",
        "logs.zip",
    ]


def test_attachments_are_downloads_only_and_only_for_people_who_see_the_ticket(email_settings):
    raw = mime_with([("notes.txt", "text/plain", b"<script>alert(1)</script>"), ("a.pdf", "application/pdf", HTML)])
    result = inbound.email_receive(raw=raw)
    department = DepartmentFactory()
    Ticket.objects.filter(pk=result.ticket.pk).update(department=department)
    kept = list(Attachment.objects.filter(ticket=result.ticket).order_by("pk"))
    assert len(kept) == 2

    agent, outsider = Client(), Client()
    agent.force_login(make_agent(department))
    outsider.force_login(make_agent(DepartmentFactory()))
    token = selectors.ticket_customer_token(ticket=result.ticket)
    other_token = selectors.ticket_customer_token(
        ticket=services.ticket_create(customer=CustomerFactory(), subject="other", body="x")
    )
    for attachment, served_type in zip(kept, ["text/plain", "application/pdf"], strict=True):
        for response in (
            agent.get(reverse("attachment", args=[attachment.pk])),
            Client().get(reverse("chat:attachment", args=[token, attachment.pk])),
        ):
            assert response.status_code == 200
            assert response["Content-Disposition"].startswith("attachment;")
            assert response["X-Content-Type-Options"] == "nosniff"
            assert response["Content-Type"].startswith(served_type)
            assert "sandbox" in response["Content-Security-Policy"]
        assert outsider.get(reverse("attachment", args=[attachment.pk])).status_code == 404
        assert Client().get(reverse("chat:attachment", args=[other_token, attachment.pk])).status_code == 404
        anonymous = Client().get(reverse("attachment", args=[attachment.pk]))
        assert anonymous.status_code == 302
        assert "/admin/login/" in anonymous["Location"]


# --- header injection -------------------------------------------------------------------------------

INJECTIONS = [
    "Hello\r\nBcc: victim@evil.test",
    "Hello\nX-Injected: yes",
    "Hello\rCc: victim@evil.test",
    "Hello\u2028Bcc: victim@evil.test",
    "Hello\x85Bcc: victim@evil.test",
    "Hello\r\n\r\n<html>body takeover</html>",
]
SAFE_HEADERS = {
    "content-type", "mime-version", "content-transfer-encoding", "subject", "from", "to", "date",
    "message-id", "in-reply-to", "references", "x-supportflow-ticket", "auto-submitted",
}  # fmt: skip


def assert_clean(smtp_server, count: int, recipients: list[str]) -> None:
    mails = smtp_server.wait_for(count)
    assert len(mails) == count
    for mail, envelope in zip(mails, smtp_server.envelopes, strict=True):
        assert {name.lower() for name in mail} <= SAFE_HEADERS, list(mail)
        for name, value in mail.items():
            assert "\r" not in str(value)
            assert "\n" not in str(value), (name, value)
            assert "victim@evil.test" not in str(value) or name.lower() == "subject"
        assert envelope.rcpt_tos == recipients
        head = envelope.content.decode("utf-8", "replace").split("\r\n\r\n")[0]
        assert not [line for line in head.split("\r\n") if line.lower().startswith(("x-injected", "bcc", "cc:"))]


@pytest.mark.parametrize("attack", INJECTIONS)
def test_crlf_in_a_stored_subject_name_or_reply_never_becomes_a_header(smtp_server, email_settings, attack):
    """The subject written straight to the row (as an old import or a console edit could), the
    customer's name and the reply body all carry the attack; only the customer receives one mail."""
    department = DepartmentFactory()
    customer = CustomerFactory(email="ada@example.com", name=attack)
    ticket = services.ticket_create(customer=customer, subject="x", body="x", channel="email", department=department)
    Ticket.objects.filter(pk=ticket.pk).update(subject=attack)
    message = services.message_create(
        ticket=ticket, author_kind="agent", author_user=make_agent(department), body=f"Reply {attack}"
    )
    assert outbound.email_reply_send(message_id=message.pk) == "sent"
    assert_clean(smtp_server, 1, ["ada@example.com"])
    assert attack.split("Hello")[1].strip()[:5] in smtp_server.messages[0].get_content()  # the body keeps it


@pytest.mark.parametrize("attack", INJECTIONS[:3])
def test_crlf_in_a_stored_customer_address_sends_nothing(smtp_server, email_settings, attack):
    customer = CustomerFactory(email="ada@example.com")
    Customer.objects.filter(pk=customer.pk).update(email=f"ada@example.com{attack.removeprefix('Hello')}")
    ticket = services.ticket_create(customer=customer, subject="x", body="x", channel="email")
    message = services.message_create(ticket=ticket, author_kind="ai", body="Answer", ai_confidence=0.9)
    assert outbound.email_reply_send(message_id=message.pk) == "skipped"
    assert smtp_server.messages == []
    assert EmailRecord.objects.get(message=message).status == "skipped"


def test_crlf_in_an_inbound_subject_and_sender_name_never_reaches_the_reply_headers(smtp_server, email_settings):
    msg = MIMEMultipart()
    name = Header("Eve\r\nBcc: victim@evil.test", "utf-8").encode()
    msg["From"] = f"{name} <eve@example.com>"
    msg["To"] = "support@help.example.com"
    msg["Subject"] = Header("Help\r\nBcc: victim@evil.test\r\nX-Injected: yes", "utf-8")
    msg["Message-ID"] = "<crlf-in@example.com>"
    msg.attach(MIMEText("Body", "plain", "utf-8"))
    result = inbound.email_receive(raw=msg.as_bytes())
    assert result.ticket.subject == "Help Bcc: victim@evil.test X-Injected: yes"
    assert result.ticket.customer.name == "Eve Bcc: victim@evil.test"
    department = DepartmentFactory()
    reply = services.message_create(
        ticket=result.ticket, author_kind="agent", author_user=make_agent(department), body="Hi\r\nBcc: x@evil.test"
    )
    assert outbound.email_reply_send(message_id=reply.pk) == "sent"
    assert_clean(smtp_server, 1, ["eve@example.com"])


@pytest.mark.parametrize("attack", INJECTIONS)
def test_escalation_notice_headers_stay_clean(smtp_server, email_settings, attack):
    department = DepartmentFactory(email="team@help.example.com")
    ticket = services.ticket_create(customer=CustomerFactory(), subject="x", body="x", department=department)
    Ticket.objects.filter(pk=ticket.pk).update(subject=attack)
    assert services.department_notify_escalation(ticket_id=ticket.pk, reason=attack) is True
    assert_clean(smtp_server, 1, ["team@help.example.com"])


@pytest.mark.parametrize("attack", INJECTIONS[:3])
def test_chat_and_api_refuse_addresses_with_line_breaks(attack, settings):
    settings.API_RATE = "100000/min"
    address = f"ada@example.com{attack.removeprefix('Hello')}"
    ticket = services.ticket_create(customer=CustomerFactory(email=""), subject="x", body="x")
    token = selectors.ticket_customer_token(ticket=ticket)
    response = Client().post(reverse("chat:email", args=[token]), {"email": address}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "That email address looks wrong." in response.content.decode()
    ticket.customer.refresh_from_db()
    assert ticket.customer.email == ""

    _, secret = api_key_create(name="x", user=make_manager(), scopes=["tickets:write", "tickets:read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    before = Ticket.objects.count()
    response = api.post("/api/v1/tickets/", {"body": "x", "customer_email": address}, format="json")
    assert response.status_code == 400
    assert "customer_email" in response.content.decode()
    assert Ticket.objects.count() == before
    assert not Customer.objects.filter(email__icontains="evil").exists()


def test_kb_upload_with_a_long_non_latin_name_is_stored_not_a_500(manager_web, settings):
    """120 characters of CJK or emoji are up to 480 bytes; file systems allow 255 (it was a 500)."""
    name = "日本語のファイル名" * 14 + ".md"
    response = manager_web.post(
        reverse(UPLOAD), {"files": [SimpleUploadedFile(name, b"# Long\n\nName.", "text/markdown")]}
    )
    assert response.status_code == 302
    job = IngestJob.objects.get()
    [stored] = files_under(settings.MEDIA_ROOT / "kb_uploads" / str(job.pk))
    assert len(stored.encode()) <= 203
    assert name.endswith(stored[3:])
    kb_services.ingest_job_run(job_id=job.pk)
    assert Article.objects.get().body == "Name."
