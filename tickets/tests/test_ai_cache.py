"""The AI cache on real parts: the pipeline over PostgreSQL + pgvector, the Django cache and the metrics
counters in the real Redis, and for the ``openai`` provider the fake OpenAI-compatible HTTP server, whose
requests are counted: a repeated question is answered without a second LLM call, an article edit or another
department or language is not, and the hit counters on /metrics and the AI analytics page move."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from knowledge import services as kb_services
from knowledge.models import Article
from supportflow.tests.test_metrics import metrics_store, scrape, value  # noqa: F401 - metrics_store is a fixture
from tickets.ai import answer as answering
from tickets.ai import cache as ai_cache
from tickets.ai import pipeline
from tickets.models import AIRun, Ticket
from tickets.tests.factories import make_manager
from tickets.tests.test_pipeline import (  # noqa: F401 - world is a fixture
    _openai_responder,
    _triage_json,
    ai_messages,
    customer_writes,
    world,
)

ANSWER = "Open Settings → Sync → Reset local cache; your notes download again within a few minutes [1]."
QUESTION = "Sync is stuck on my Android phone, it says syncing forever. How do I fix it?"


@pytest.fixture
def cache_on(settings, metrics_store):  # noqa: F811
    settings.AI_CACHE_ENABLED = True
    return metrics_store


def reply_requests(fake) -> int:
    return sum(
        1
        for request in fake.requests
        if "riage" not in (request.get("response_format") or {}).get("json_schema", {}).get("name", "")
    )


def ask(body: str) -> tuple[str, Ticket]:
    message = customer_writes(body)
    outcome = pipeline.process_message(message_id=message.pk)
    return outcome, Ticket.objects.get(pk=message.ticket_id)


def reply_run(ticket: Ticket) -> AIRun:
    return AIRun.objects.get(ticket=ticket, kind="reply", provider="openai")


# --- LLM answers (openai provider) ---------------------------------------------------------------------


def test_a_repeated_question_is_answered_from_the_cache_without_a_second_llm_call(
    world,  # noqa: F811
    fake_openai,
    cache_on,
    client,
):
    fake_openai.responder = _openai_responder(ANSWER)

    # given one customer's question answered by the LLM
    first_outcome, first = ask(QUESTION)
    assert first_outcome == "sent"
    assert reply_requests(fake_openai) == 1

    # when another customer asks it again (other case, spacing and punctuation)
    second_outcome, second = ask("  sync is STUCK on my android phone, it says syncing forever.  how do I fix it ")

    # then the answer comes from the cache: no second reply request, nothing spent, the saving recorded
    assert second_outcome == "sent"
    assert reply_requests(fake_openai) == 1
    assert ai_messages(second)[0].body == ai_messages(first)[0].body
    paid, cached = reply_run(first), reply_run(second)
    assert paid.cost > 0
    assert (cached.cost, cached.tokens_in, cached.attempts) == (Decimal(0), 0, 0)
    assert cached.meta["cache"] == "hit"
    assert Decimal(cached.meta["saved_cost"]) == paid.cost
    assert paid.meta["cache"] == "miss"

    samples = scrape(client)
    assert value(samples, "supportflow_ai_cache_lookups_total", cache="answer", result="miss") == 1
    assert value(samples, "supportflow_ai_cache_lookups_total", cache="answer", result="hit") == 1
    assert value(samples, "supportflow_ai_cache_saved_usd_total", cache="answer") == float(paid.cost)
    assert value(samples, "supportflow_ai_cache_lookups_total", cache="retrieval", result="hit") >= 1

    # and the AI analytics page shows the period's hit rate, calls and money saved
    client.force_login(make_manager(username="maria"))
    page = client.get(reverse("analytics:ai")).content.decode()
    panel = page[page.index('id="ai-cache"') :]
    assert '<span class="label">Answer cache hit rate</span><span class="value">50 %</span>' in panel
    assert '<span class="label">LLM calls saved</span><span class="value">1</span>' in panel
    assert f'<span class="label">Money saved (USD)</span><span class="value">{paid.cost}</span>' in panel


def test_an_article_edit_invalidates_the_cached_answer(
    world,  # noqa: F811
    fake_openai,
    cache_on,
    django_capture_on_commit_callbacks,
):
    fake_openai.responder = _openai_responder(ANSWER)
    ask(QUESTION)
    assert reply_requests(fake_openai) == 1

    # when an agent edits an article (any article: the knowledge base has a new version)
    article = Article.objects.get(slug="charged-twice")
    with django_capture_on_commit_callbacks(execute=True):
        kb_services.article_save(
            article=article,
            title=article.title,
            body=article.body + "\n\nRefunds show within ten days.",
            status="published",
            reindex="now",
        )

    # then the same question is answered by the LLM again
    outcome, _ = ask(QUESTION)
    assert outcome == "sent"
    assert reply_requests(fake_openai) == 2


def test_another_department_or_language_does_not_share_a_cached_answer(
    world,  # noqa: F811
    fake_openai,
    cache_on,
):
    answers = iter([_triage_json(), _triage_json(department="billing"), _triage_json(language="de")])

    def respond(request: dict):
        schema_name = (request.get("response_format") or {}).get("json_schema", {}).get("name", "")
        if "riage" in schema_name:
            return next(answers)
        return {"answerable": True, "answer": ANSWER, "citations": [1]}

    fake_openai.responder = respond
    outcomes = [ask(QUESTION)[1].department.slug for _ in range(3)]

    assert outcomes == ["technical", "billing", "technical"]
    assert reply_requests(fake_openai) == 3


def test_an_answer_with_personal_data_is_not_kept_for_the_next_customer(
    world,  # noqa: F811
    fake_openai,
    cache_on,
):
    fake_openai.responder = _openai_responder("Reset the local cache [1]; or call us on +44 20 7946 0958.")
    ask(QUESTION)
    ask(QUESTION)
    assert reply_requests(fake_openai) == 2


def test_with_the_cache_off_every_question_is_paid(
    world,  # noqa: F811
    fake_openai,
    settings,
):
    settings.AI_CACHE_ENABLED = False
    fake_openai.responder = _openai_responder(ANSWER)
    ask(QUESTION)
    ask(QUESTION)
    assert reply_requests(fake_openai) == 2


# --- retrieval (local provider) -----------------------------------------------------------------------


def test_a_repeated_question_reuses_the_retrieval_of_the_local_provider(
    world,  # noqa: F811
    cache_on,
    client,
    monkeypatch,
):
    searches = []
    search = answering.kb_search
    monkeypatch.setattr(answering, "kb_search", lambda *a, **kw: searches.append(a[0]) or search(*a, **kw))

    first_outcome, first = ask(QUESTION)
    searched = len(searches)
    second_outcome, second = ask(QUESTION.lower())

    assert (first_outcome, second_outcome) == ("sent", "sent")
    assert searched >= 1
    assert len(searches) == searched  # the second conversation searched nothing
    assert ai_messages(second)[0].body == ai_messages(first)[0].body
    assert ai_messages(second)[0].citations == ai_messages(first)[0].citations
    samples = scrape(client)
    assert value(samples, "supportflow_ai_cache_lookups_total", cache="retrieval", result="hit") == searched
    assert value(samples, "supportflow_ai_cache_lookups_total", cache="answer", result="hit") is None


def test_retrieval_is_cached_per_language_and_namespace_and_an_edit_invalidates_it(
    world,  # noqa: F811
    cache_on,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    searches = []
    search = answering.kb_search
    monkeypatch.setattr(answering, "kb_search", lambda *a, **kw: searches.append(kw["language"]) or search(*a, **kw))
    query = "export my notes to markdown"

    english = answering.retrieve(query, language="en")
    assert [p.hit.chunk_id for p in answering.retrieve(query, language="en")] == [p.hit.chunk_id for p in english]
    answering.retrieve(query, language="de")
    answering.retrieve(query, language="en", namespace="eval-other")
    assert searches == ["en", "de", "en"]

    article = Article.objects.get(slug="export-markdown")
    with django_capture_on_commit_callbacks(execute=True):
        kb_services.article_delete(article=article)
    after = answering.retrieve(query, language="en")
    assert searches == ["en", "de", "en", "en"]
    assert "export-markdown" not in {p.hit.slug for p in after}


def test_the_key_reads_the_question_normalised():
    assert ai_cache.normalise("  How do I  EXPORT?! ") == ai_cache.normalise("how do i export")
    assert ai_cache.normalise("export to PDF") != ai_cache.normalise("export to markdown")


# --- embeddings shared between processes -------------------------------------------------------------


@pytest.mark.django_db
def test_a_text_embedded_by_one_process_is_not_embedded_again_by_another(cache_on, client, monkeypatch):
    from knowledge import embeddings

    text = "my notes vanished after the update, where are they"
    first = embeddings.embed_cached([text])[0]
    embeddings._cache.clear()  # another worker process: nothing in its own memory
    calls = []
    model_embed = embeddings.embed
    monkeypatch.setattr(embeddings, "embed", lambda texts, **kw: calls.append(list(texts)) or model_embed(texts, **kw))

    again = embeddings.embed_cached([text, "and my attachments"])

    assert calls == [["and my attachments"]]  # only the new text reaches the model
    assert again[0].tobytes() == first.tobytes()
    samples = scrape(client)
    assert value(samples, "supportflow_ai_cache_lookups_total", cache="embedding", result="hit") == 1
    assert value(samples, "supportflow_ai_cache_lookups_total", cache="embedding", result="miss") == 2


def test_the_cache_unreachable_is_a_miss_not_an_error(world, cache_on, settings):  # noqa: F811
    from knowledge import embeddings

    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0", "OPTIONS": {}},
    }
    embeddings._cache.clear()

    passages = answering.retrieve("export my notes to markdown", language="en")

    assert passages[0].hit.slug == "export-markdown"
