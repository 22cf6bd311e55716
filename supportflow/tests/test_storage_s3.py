"""Files through the storage API against a real S3-compatible HTTP server (moto's server mode, started
here on a free localhost port): the settings made from SF_STORAGE=s3, inbound mail and its attachments
in the bucket and served to the right people only, a console upload ingested by a real worker from the
bucket, the retention purge deleting the objects, a failing bucket giving a clear error, and local
folders staying the default."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from django.conf import settings as django_settings
from django.core.files.storage import FileSystemStorage, storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from moto.server import ThreadedMotoServer

from knowledge.models import Article, IngestJob
from knowledge.tests.test_ingest import minimal_pdf
from supportflow.storage.filesystem import PrivateFileSystemStorage
from supportflow.storage.s3 import PrivateS3Storage
from tickets import selectors, services
from tickets.email import inbound, storage
from tickets.models import Attachment, EmailRecord, Ticket
from tickets.tests.emails import build
from tickets.tests.factories import DepartmentFactory, make_agent, make_manager

BASE_DIR = Path(__file__).resolve().parents[2]
KEYS = {"AWS_ACCESS_KEY_ID": "sf-test-key", "AWS_SECRET_ACCESS_KEY": "sf-test-secret"}


def settings_storages(**environ: str) -> dict:
    """``STORAGES`` as ``supportflow.settings`` builds it from this environment (a fresh interpreter)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SF_STORAGE"))}
    result = subprocess.run(
        [sys.executable, "-c", "import json, supportflow.settings as s; print(json.dumps(s.STORAGES))"],
        env={**clean, "SECRET_KEY": "storage-test", **environ},
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(result.stderr.strip().splitlines()[-1])
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def s3_storages(s3_endpoint):
    """The settings' own S3 configuration for a media bucket and a separate email bucket on the server."""
    media, email = f"sf-media-{uuid.uuid4().hex[:8]}", f"sf-email-{uuid.uuid4().hex[:8]}"
    client = s3_client(s3_endpoint)
    for bucket in (media, email):
        client.create_bucket(Bucket=bucket)
    configured = settings_storages(
        SF_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME=media,
        AWS_EMAIL_BUCKET_NAME=email,
        AWS_S3_ENDPOINT_URL=s3_endpoint,
        AWS_S3_REGION_NAME="us-east-1",
        AWS_S3_ADDRESSING_STYLE="path",
        **KEYS,
    )
    return {"media": media, "email": email, "STORAGES": configured}


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
    )


class Bucket:
    def __init__(self, client, name: str) -> None:
        self.client, self.name = client, name

    def keys(self) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def clear(self) -> None:
        for key in self.keys():
            self.client.delete_object(Bucket=self.name, Key=key)


@pytest.fixture
def s3(settings, s3_endpoint, s3_storages, tmp_path):
    """Point the file storages at the buckets (empty) for one test; the local roots are empty folders,
    so a file written locally by mistake shows."""
    client = s3_client(s3_endpoint)
    buckets = {name: Bucket(client, s3_storages[name]) for name in ("media", "email")}
    for bucket in buckets.values():
        bucket.clear()
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_PRIVATE_ROOT = tmp_path / "email"
    settings.INBOUND_EMAIL_TOKEN = "inbound-test-token"
    settings.STORAGES = s3_storages["STORAGES"]  # setting_changed resets django's cached backends
    assert isinstance(storages["email"], PrivateS3Storage)
    yield buckets
    for bucket in buckets.values():
        bucket.clear()


def local_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def post_email(client, raw: bytes):
    return client.post(
        "/inbound/email/", data=raw, content_type="message/rfc822", HTTP_AUTHORIZATION="Bearer inbound-test-token"
    )


# --- settings ---------------------------------------------------------------------------------------


def test_local_folders_stay_the_default():
    configured = settings_storages()
    assert configured["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert configured["email"] == {"BACKEND": "supportflow.storage.filesystem.PrivateFileSystemStorage"}
    # and in this process: the same paths as before object storage, so existing files keep working
    assert django_settings.SF_STORAGE == "local"
    assert type(storages["default"]) is FileSystemStorage
    assert storages["default"].location == str(Path(django_settings.MEDIA_ROOT).resolve())
    assert isinstance(storages["email"], PrivateFileSystemStorage)
    assert storages["email"].location == str(Path(django_settings.EMAIL_PRIVATE_ROOT).resolve())


@pytest.mark.django_db
def test_local_email_files_stay_private_and_whole(settings, tmp_path):
    settings.EMAIL_PRIVATE_ROOT = tmp_path / "private"
    name, digest = storage.store("raw", b"From: a@example.com\r\n\r\nhi", suffix=".eml")
    path = tmp_path / "private" / name
    assert path.read_bytes() == b"From: a@example.com\r\n\r\nhi"
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert name == f"raw/{digest[:2]}/{digest}.eml"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left beside it
    assert storage.store("raw", b"From: a@example.com\r\n\r\nhi", suffix=".eml") == (name, digest)
    with pytest.raises(ValueError, match="no URL"):
        storages["email"].url(name)
    for escape in ("../secret_key", "/etc/passwd", "raw/\x00"):
        with pytest.raises(FileNotFoundError):
            storage.open_file(escape)


def test_s3_settings_come_from_the_environment(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    configured = settings_storages(
        SF_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="files",
        AWS_S3_ENDPOINT_URL="https://minio.internal:9000",
        AWS_ACCESS_KEY_ID="key-id",
        AWS_SECRET_ACCESS_KEY_FILE=str(secret),
    )
    default, email = configured["default"], configured["email"]
    assert default["BACKEND"] == "supportflow.storage.s3.S3Storage"
    assert email["BACKEND"] == "supportflow.storage.s3.PrivateS3Storage"
    assert default["OPTIONS"] == {
        "endpoint_url": "https://minio.internal:9000",
        "access_key": "key-id",
        "secret_key": "from-a-file",
        "bucket_name": "files",
        "location": "media",
        "file_overwrite": False,
    }
    # one bucket, two prefixes; never a signed or public URL for mail
    assert email["OPTIONS"]["bucket_name"] == "files"
    assert email["OPTIONS"]["location"] == "email"
    assert email["OPTIONS"]["querystring_auth"] is False
    assert "default_acl" not in email["OPTIONS"]  # no ACL header: private by the bucket's default

    with pytest.raises(RuntimeError, match="needs AWS_STORAGE_BUCKET_NAME"):
        settings_storages(SF_STORAGE="s3")
    with pytest.raises(RuntimeError, match="SF_STORAGE must be 'local' or 's3'"):
        settings_storages(SF_STORAGE="ftp")


# --- email ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_inbound_mail_and_its_attachment_land_in_the_bucket_and_only_people_who_may_see_them_get_them(
    client, s3, settings
):
    raw = build(attachments=[("notes.txt", "text/plain", b"secret notes")])
    response = post_email(client, raw)
    assert response.status_code == 202
    ticket = Ticket.objects.get(reference=response.json()["ticket"])
    record = EmailRecord.objects.get(ticket=ticket)
    attachment = Attachment.objects.get(ticket=ticket)
    assert s3["email"].keys() == {f"email/{record.raw_name}", f"email/{attachment.storage_name}"}
    assert s3["email"].read(f"email/{record.raw_name}") == raw  # the original, kept
    assert s3["email"].read(f"email/{attachment.storage_name}") == b"secret notes"
    assert s3["media"].keys() == set()
    assert local_files(settings.EMAIL_PRIVATE_ROOT) == []

    department, other = DepartmentFactory(), DepartmentFactory()
    Ticket.objects.filter(pk=ticket.pk).update(department=department)
    url = reverse("attachment", args=[attachment.pk])
    assert client.get(url).status_code == 302  # anonymous → login
    client.force_login(make_agent(other))
    assert client.get(url).status_code == 404
    client.force_login(make_agent(department))
    served = client.get(url)
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == b"secret notes"
    assert served["Content-Disposition"].startswith("attachment;")
    assert served["Cache-Control"] == "private, no-store"

    client.logout()
    token = selectors.ticket_customer_token(ticket=ticket)
    assert b"".join(client.get(reverse("chat:attachment", args=[token, attachment.pk])).streaming_content) == (
        b"secret notes"
    )
    assert client.get(reverse("chat:attachment", args=["forged-token", attachment.pk])).status_code == 404

    s3["email"].clear()  # gone from the bucket: a 404 that says so, not a 500
    client.force_login(make_agent(department))
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_a_download_while_the_store_is_unreachable_is_a_503_not_a_500(client, s3, settings):
    attachment_id = (
        inbound.email_receive(raw=build(attachments=[("a.txt", "text/plain", b"x")]))
        .record.message.attachments.get()
        .pk
    )
    department = DepartmentFactory()
    Ticket.objects.update(department=department)
    unreachable = json.loads(json.dumps(settings.STORAGES))
    unreachable["email"]["OPTIONS"]["endpoint_url"] = "http://127.0.0.1:1"  # nothing listens there
    settings.STORAGES = unreachable
    assert storages["email"].client_config.connect_timeout == 5  # bounded, not botocore's 60 s × 5 tries
    client.force_login(make_agent(department))

    response = client.get(reverse("attachment", args=[attachment_id]))

    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "unavailable" in response.json()["error"]


@pytest.mark.django_db
def test_a_retried_delivery_writes_nothing_new(client, s3):
    raw = build(message_id="<twice@example.com>", attachments=[("a.txt", "text/plain", b"same bytes")])
    assert post_email(client, raw).json()["status"] == "created"
    keys = s3["email"].keys()
    inbound.email_receive(raw=build(sender="bob@example.com", attachments=[("b.txt", "text/plain", b"same bytes")]))
    assert post_email(client, raw).json()["status"] == "duplicate"
    assert len(s3["email"].keys() - keys) == 1  # the second email's raw MIME; the attachment is shared
    assert Attachment.objects.values("storage_name").distinct().count() == 1


@pytest.mark.django_db
def test_a_bucket_that_fails_is_a_503_to_retry_and_nothing_is_half_stored(client, s3, settings):
    broken = json.loads(json.dumps(settings.STORAGES))
    broken["email"]["OPTIONS"]["bucket_name"] = "no-such-bucket"
    settings.STORAGES = broken

    response = post_email(client, build(attachments=[("a.txt", "text/plain", b"x")]))

    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "could not be stored" in response.json()["error"]
    assert not Ticket.objects.exists()
    assert not EmailRecord.objects.exists()


@pytest.mark.django_db
def test_retention_deletes_a_purged_tickets_objects_but_not_bytes_another_ticket_still_has(
    s3, settings, django_capture_on_commit_callbacks
):
    settings.RETENTION_CLOSED_TICKETS_DAYS = 30
    shared = ("contract.pdf", "application/pdf", b"%PDF-1.4 the same contract")
    old = inbound.email_receive(raw=build(attachments=[shared, ("old.txt", "text/plain", b"only the old one")]))
    keep = inbound.email_receive(raw=build(sender="bob@example.com", attachments=[shared]))
    Ticket.objects.filter(pk=old.ticket.pk).update(status="closed", closed_at=timezone.now() - dt.timedelta(days=31))
    old_files = {f"email/{old.record.raw_name}", *(f"email/{a.storage_name}" for a in old.ticket.attachments.all())}
    kept_files = {f"email/{keep.record.raw_name}", *(f"email/{a.storage_name}" for a in keep.ticket.attachments.all())}
    assert s3["email"].keys() == old_files | kept_files

    with django_capture_on_commit_callbacks(execute=True):
        assert services.retention_purge()["tickets_deleted"] == 1

    assert not Ticket.objects.filter(pk=old.ticket.pk).exists()
    assert s3["email"].keys() == kept_files  # the shared contract stays: bob's ticket still has it
    with django_capture_on_commit_callbacks(execute=True):
        assert services.retention_purge()["tickets_deleted"] == 0
    assert s3["email"].keys() == kept_files


# --- knowledge-base uploads -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_console_upload_goes_to_the_bucket_and_the_worker_ingests_it_from_there(client, s3, celery_worker):
    client.force_login(make_manager())
    files = [
        SimpleUploadedFile("offline.md", b"# Offline mode\n\nPin notebooks to keep them offline."),
        SimpleUploadedFile("passkeys.pdf", minimal_pdf("Passkeys replace passwords on every device")),
    ]

    response = client.post(reverse("admin:knowledge_article_upload"), {"files": files, "default_status": "draft"})

    assert response.status_code == 302
    job = IngestJob.objects.get()
    for _ in range(600):  # the worker reads from the bucket, embeds, records; wait for it (not a timing check)
        job.refresh_from_db()
        if job.status == "done":
            break
        time.sleep(0.1)
    assert job.status == "done"
    assert [(r["name"], r["outcome"]) for r in job.results] == [("offline.md", "created"), ("passkeys.pdf", "created")]
    assert "Pin notebooks" in Article.objects.get(slug="offline").body
    assert "Passkeys replace passwords" in Article.objects.get(slug="passkeys").body
    assert s3["media"].keys() == set()  # uploads are not kept once ingested
    assert local_files(Path(django_settings.MEDIA_ROOT)) == []


@pytest.mark.django_db
def test_the_files_wait_in_the_bucket_until_the_worker_runs(client, s3, django_capture_on_commit_callbacks):
    from knowledge import services as kb_services

    client.force_login(make_manager())
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(
            reverse("admin:knowledge_article_upload"),
            {"files": [SimpleUploadedFile("a.md", b"# A\n\nAlpha."), SimpleUploadedFile("b.md", b"# B\n\nBeta.")]},
        )
    assert response.status_code == 302
    assert len(queued) == 1
    job = IngestJob.objects.get()
    assert s3["media"].keys() == {f"media/kb_uploads/{job.pk}/00-a.md", f"media/kb_uploads/{job.pk}/01-b.md"}

    s3["media"].client.delete_object(Bucket=s3["media"].name, Key=f"media/kb_uploads/{job.pk}/01-b.md")
    kb_services.ingest_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert [(r["name"], r["outcome"]) for r in job.results] == [("a.md", "created"), ("b.md", "failed")]
    assert "no longer stored" in job.results[1]["message"]
    assert s3["media"].keys() == set()


@pytest.mark.django_db
def test_an_upload_the_bucket_refuses_is_a_clear_error_and_queues_nothing(client, s3, settings):
    broken = json.loads(json.dumps(settings.STORAGES))
    broken["default"]["OPTIONS"]["bucket_name"] = "no-such-bucket"
    settings.STORAGES = broken
    client.force_login(make_manager())

    response = client.post(
        reverse("admin:knowledge_article_upload"), {"files": [SimpleUploadedFile("a.md", b"# A\n\nAlpha.")]}
    )

    assert response.status_code == 400
    assert "could not be stored; nothing was uploaded" in response.content.decode()
    assert not IngestJob.objects.exists()
