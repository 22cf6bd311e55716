"""Upload in the console → a real Celery worker ingests the files → the page reports each file."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from knowledge.models import Article, IngestJob
from knowledge.tests.test_ingest import minimal_pdf
from supportflow.celery import app
from tickets.tests.factories import make_manager

UPLOAD = reverse("admin:knowledge_article_upload")


@pytest.fixture
def celery_worker():
    app.loader.import_default_modules()
    app.control.purge()  # tasks other tests left on the test broker are not this test's
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@pytest.fixture
def manager_client(client, transactional_db):
    client.force_login(make_manager())
    return client


@pytest.mark.django_db(transaction=True)
def test_upload_is_ingested_by_the_worker_with_per_file_results(manager_client, celery_worker, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    files = [
        SimpleUploadedFile(
            "offline-mode.md", b"---\nstatus: published\n---\n# Offline mode\n\nPin notebooks to keep them."
        ),
        SimpleUploadedFile("guide.pdf", minimal_pdf("Passkeys replace passwords on every device")),
        SimpleUploadedFile("broken.pdf", b"%PDF-1.4 this is not really a pdf"),
    ]
    response = manager_client.post(UPLOAD, {"files": files, "default_status": "draft"})
    assert response.status_code == 302
    job = IngestJob.objects.get()

    progress = reverse("admin:knowledge_article_upload_progress", args=[job.pk])
    for _ in range(300):
        job.refresh_from_db()
        if job.status == "done":
            break
        import time

        time.sleep(0.1)
    assert job.status == "done"
    assert [(r["name"], r["outcome"]) for r in job.results] == [
        ("offline-mode.md", "created"),
        ("guide.pdf", "created"),
        ("broken.pdf", "failed"),
    ]
    assert "could not be read" in job.results[2]["message"]
    html = manager_client.get(progress).content.decode()
    assert "3 of 3 files processed" in html
    assert "hx-trigger" not in html  # polling stops when the job is done
    assert Article.objects.get(slug="offline-mode").status == "published"
    assert Article.objects.get(slug="guide").status == "draft"
    assert Article.objects.get(slug="guide").chunks.exists()
    assert not list((tmp_path / "kb_uploads" / str(job.pk)).iterdir())  # uploads are not kept


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "Choose at least one file"),
        ([("virus.exe", b"MZ")], "not supported"),
        ([(f"f{i}.md", b"# x\n\ny") for i in range(21)], "at most 20 files"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason_and_nothing_is_queued(client, files, message, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(make_manager())
    response = client.post(UPLOAD, {"files": [SimpleUploadedFile(n, d) for n, d in files]})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert IngestJob.objects.count() == 0


@pytest.mark.django_db
def test_agents_cannot_upload(client, agent):
    client.force_login(agent)
    assert client.get(UPLOAD).status_code == 403
