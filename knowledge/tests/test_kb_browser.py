"""The knowledge base as people meet it, in headless Chromium on the real ASGI app: a customer searches
the help center and votes, a customer typing in the chat is shown suggestions (debounced HTMX), and a
manager uploads a PDF in the console and watches a real Celery worker index it."""

from __future__ import annotations

import re

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import expect

from knowledge import services
from knowledge.models import Article, ArticleVote, SuggestionImpression
from knowledge.tests.test_ingest import minimal_pdf
from supportflow.celery import app
from tickets.tests import browser as harness
from tickets.tests.factories import make_manager

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)

expect.set_options(timeout=15_000)

PASSWORD = "pw-for-kb-browser-tests"


@pytest.fixture
def kb(transactional_db):
    billing = services.category_for("Billing")
    for title, slug, status, body in [
        (
            "Why was I charged twice?",
            "charged-twice",
            "published",
            "## Duplicate charges\n\nA second charge is a pending authorisation your bank releases in 3–5 days.",
        ),
        ("Reset sync on Android", "reset-sync", "published", "## Steps\n\nOpen Settings → Sync → Reset local cache."),
        ("Secret pricing plan", "secret", "draft", "## Internal\n\nNew pricing for duplicate charges next year."),
    ]:
        services.article_save(title=title, slug=slug, status=status, category=billing, reindex="now", body=body)
    return {a.slug: a for a in Article.objects.all()}


def test_help_center_search_article_and_one_vote_per_visitor(new_context, kb):
    page = new_context().new_page()
    page.goto("/help/")
    expect(page.get_by_role("heading", name="Billing")).to_be_visible()
    expect(page.get_by_role("link", name="Secret pricing plan")).to_have_count(0)

    page.get_by_label("Search the help center").fill("I see a duplicate charge on my card")
    page.get_by_role("button", name="Search").click()
    results = page.locator("ol.help-results > li")
    expect(results.first).to_contain_text("Why was I charged twice?")
    expect(page.get_by_text("Secret pricing plan")).to_have_count(0)

    results.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Why was I charged twice?")).to_be_visible()
    page.get_by_role("button", name="Yes").click()
    expect(page.locator("#help-vote")).to_contain_text("Thanks for telling us it helped")

    page.reload()  # the same visitor again: the page remembers, the count does not move
    expect(page.locator("#help-vote")).to_contain_text("Thanks for telling us it helped")
    article = Article.objects.get(slug="charged-twice")
    assert (article.helpful_yes, article.helpful_no) == (1, 0)
    assert ArticleVote.objects.filter(article=article).count() == 1
    assert article.view_count >= 1


def test_chat_suggestions_appear_while_typing_and_the_click_is_recorded(new_context, kb):
    page = new_context().new_page()
    page.goto("/chat/")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_label("How can we help?").fill("Hello")
    page.get_by_role("button", name="Start the conversation").click()
    expect(page).to_have_url(re.compile(r"/chat/c/[^/]+/(#.*)?$"))

    with page.expect_request(lambda r: "/help/suggest/" in r.url) as asked:
        page.locator("#body").press_sequentially("why was my card charged twice", delay=20)
    assert "place=chat" in asked.value.url
    suggestion = page.locator("#suggestions a", has_text="Why was I charged twice?")
    expect(suggestion).to_be_visible()
    expect(page.locator("#suggestions")).not_to_contain_text("Secret pricing plan")
    impression = SuggestionImpression.objects.filter(article=kb["charged-twice"], place="chat").latest("pk")
    assert impression.clicked_at is None

    with page.context.expect_page() as opened:
        suggestion.click()
    article_page = opened.value
    expect(article_page.get_by_role("heading", name="Why was I charged twice?")).to_be_visible()
    impression.refresh_from_db()
    assert impression.clicked_at is not None


@pytest.fixture
def celery_worker(transactional_db):
    app.loader.import_default_modules()
    app.control.purge()  # tasks other tests left on the test broker are not this test's
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


def test_manager_uploads_a_pdf_and_watches_the_worker_index_it(new_context, celery_worker, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    manager = make_manager()
    manager.set_password(PASSWORD)
    manager.save()
    pdf = tmp_path / "passkeys-guide.pdf"
    pdf.write_bytes(minimal_pdf("Passkeys replace passwords on every device you sign in with"))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf")

    page = new_context().new_page()
    page.goto("/admin/login/?next=/admin/knowledge/article/upload/")
    page.locator("#id_username").fill(manager.get_username())
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.get_by_label("Files").set_input_files([str(pdf), str(broken)])
    page.get_by_label("Status of new articles").select_option("published")
    page.get_by_role("button", name="Upload and index").click()

    progress = page.locator("#sf-upload")
    expect(progress.locator("progress")).to_be_visible()
    expect(progress).to_contain_text("Done — 2 of 2 files processed", timeout=60_000)
    expect(progress.locator("tr", has_text="passkeys-guide.pdf")).to_contain_text("created")
    expect(progress.locator("tr", has_text="broken.pdf")).to_contain_text("could not be read")

    article = Article.objects.get(slug="passkeys-guide")
    assert article.status == "published"
    assert article.source == "upload"
    assert article.chunks.exclude(embedding=None).exists()

    customer = new_context().new_page()
    customer.goto("/help/?q=passkeys+instead+of+passwords")
    expect(customer.locator("ol.help-results > li").first).to_contain_text(article.title)
