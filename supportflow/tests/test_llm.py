"""The LLM client against a real OpenAI-compatible HTTP server (supportflow/llm/fake.py): the SDK, our
retries, cost accounting and the Redis circuit breaker all run for real."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from decimal import Decimal
from typing import Literal

import pytest
import redis
from django.urls import reverse
from pydantic import BaseModel

from supportflow import llm
from supportflow.llm import breaker
from supportflow.llm.fake import FAKE_API_KEY, FakeOpenAI, fake_openai_server

USER_SECRET = "my card number is 4111 1111 1111 1111"
MESSAGES = [
    {"role": "system", "content": "You triage support tickets."},
    {"role": "user", "content": "I was charged twice this month."},
]
TRIAGE = {"category": "billing", "priority": "high", "sentiment": -0.6, "summary": "Double charge."}


class Triage(BaseModel):
    category: Literal["billing", "technical", "account", "other"]
    priority: Literal["low", "normal", "high", "urgent"]
    sentiment: float
    summary: str


@pytest.fixture
def fake(settings):
    with fake_openai_server(settings) as server:
        yield server


def _unavailable(**kwargs) -> llm.LLMUnavailable:
    with pytest.raises(llm.LLMUnavailable) as caught:
        llm.chat(task="triage", messages=MESSAGES, **kwargs)
    return caught.value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- provider choice


def test_provider_is_local_without_a_key_or_url(settings):
    settings.LLM_PROVIDER, settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = "openai", "", None
    assert llm.provider_for("triage") == "local"

    settings.OPENAI_BASE_URL = "http://127.0.0.1:11434/v1"  # a keyless local server is enough
    assert llm.provider_for("reply") == "openai"

    settings.LLM_PROVIDER = "local"
    assert llm.provider_for("reply") == "local"


def test_chat_with_the_local_provider_sends_nothing(fake, settings):
    settings.LLM_PROVIDER = "local"

    error = _unavailable()

    assert (error.reason, error.attempts, error.cost) == ("not_configured", 0, Decimal(0))
    assert fake.request_count == 0


def test_unknown_task_is_a_programming_error(fake):
    with pytest.raises(ValueError, match="unknown LLM task"):
        llm.chat(task="summarise", messages=MESSAGES)
    assert fake.request_count == 0


# --- successful calls


def test_structured_triage_is_parsed_with_a_strict_schema(fake, caplog):
    fake.enqueue(content=TRIAGE, usage=(200, 30))
    messages = [*MESSAGES, {"role": "user", "content": USER_SECRET}]

    with caplog.at_level(logging.DEBUG):
        result = llm.chat(task="triage", messages=messages, schema=Triage, max_tokens=300)

    assert result.parsed == Triage(**TRIAGE)
    assert json.loads(result.text) == TRIAGE
    assert (result.provider, result.model, result.attempts) == ("openai", "gpt-4o-mini", 1)
    assert (result.tokens_in, result.tokens_out) == (200, 30)
    assert result.cost == Decimal("0.000048")  # 200 × 0.15/1M + 30 × 0.60/1M
    assert result.latency_ms >= 0
    [sent] = fake.requests
    assert sent["model"] == "gpt-4o-mini"
    assert (sent["max_tokens"], sent["temperature"]) == (300, 0.0)
    response_format = sent["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Triage"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"category", "priority", "sentiment", "summary"}
    # The key goes in the Authorization header only; neither key nor prompt is logged.
    assert fake.request_headers[0]["authorization"] == f"Bearer {FAKE_API_KEY}"
    assert FAKE_API_KEY not in json.dumps(fake.requests)
    assert USER_SECRET not in caplog.text
    assert FAKE_API_KEY not in caplog.text


def test_reply_text_from_a_responder_that_reads_the_prompt(fake):
    fake.responder = lambda request: f"Echo: {request['messages'][-1]['content']}"

    result = llm.chat(task="reply", messages=MESSAGES, temperature=0.3)

    assert (result.text, result.parsed, result.attempts) == ("Echo: I was charged twice this month.", None, 1)
    assert "response_format" not in fake.requests[0]
    assert fake.requests[0]["temperature"] == 0.3


def test_reasoning_models_get_max_completion_tokens_and_no_temperature(fake, settings):
    fake.responder = lambda request: "ok"
    llm.chat(task="reply", messages=MESSAGES, max_tokens=123)
    settings.LLM_TOKEN_LIMIT_PARAM = "max_completion_tokens"
    settings.LLM_SEND_TEMPERATURE = False
    llm.chat(task="reply", messages=MESSAGES, max_tokens=123)

    assert (fake.requests[0]["max_tokens"], fake.requests[0]["temperature"]) == (123, 0.0)
    assert fake.requests[1]["max_completion_tokens"] == 123
    assert "max_tokens" not in fake.requests[1]
    assert "temperature" not in fake.requests[1]


def test_models_endpoint_answers(fake):
    assert [model.id for model in llm.get_client().models.list()] == ["gpt-4o-mini"]


def test_warm_up_builds_schemas_without_any_request(fake):
    llm.warm_up(Triage)

    assert llm.response_format_for(Triage)["json_schema"]["name"] == "Triage"
    assert fake.request_count == 0


# --- retries


def test_rate_limit_honours_retry_after_then_succeeds(fake):
    fake.enqueue(status=429, headers={"Retry-After": "1"})
    fake.enqueue(content=TRIAGE, usage=(100, 10))

    started = time.monotonic()
    result = llm.chat(task="triage", messages=MESSAGES, schema=Triage)
    elapsed = time.monotonic() - started

    assert result.attempts == 2
    assert fake.request_count == 2
    assert 0.95 <= elapsed < 3


def test_retry_after_ms_is_preferred(fake):
    fake.enqueue(status=503, headers={"retry-after-ms": "50", "Retry-After": "10"})
    fake.enqueue(content="fine")

    started = time.monotonic()
    result = llm.chat(task="reply", messages=MESSAGES)

    assert (result.text, result.attempts) == ("fine", 2)
    assert time.monotonic() - started < 2


def test_a_longer_retry_after_than_we_accept_gives_up_at_once(fake, settings):
    settings.LLM_RETRY_MAX_WAIT_S = 5
    fake.enqueue(status=429, headers={"Retry-After": "60"})
    fake.enqueue(content="never asked for")

    started = time.monotonic()
    error = _unavailable()

    assert (error.reason, error.attempts) == ("rate_limited", 1)
    assert fake.request_count == 1
    assert time.monotonic() - started < 1


def test_server_errors_are_retried_up_to_max_attempts(fake):
    for _ in range(3):
        fake.enqueue(status=500)
    fake.enqueue(content="never asked for")

    error = _unavailable()

    assert (error.reason, error.attempts, error.tokens_in, error.cost) == ("server_error", 3, 0, Decimal(0))
    assert fake.request_count == 3


def test_a_slow_server_times_out_without_blocking_other_requests(fake, settings):
    settings.LLM_TIMEOUT_S = 0.3
    settings.LLM_MAX_ATTEMPTS = 1
    fake.enqueue(content="too late", delay=2.0)

    started = time.monotonic()
    error = _unavailable()
    assert (error.reason, error.attempts) == ("timeout", 1)
    assert time.monotonic() - started < 1.5

    # The delayed handler is still asleep; the server answers the next request anyway.
    assert llm.chat(task="reply", messages=MESSAGES).text == "OK"
    assert fake.request_count == 2


def test_connection_refused_is_retried_then_reported(settings):
    settings.LLM_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{_free_port()}/v1"
    settings.LLM_RETRY_BASE_S = 0.01
    settings.LLM_BREAKER_KEY_PREFIX = f"sf:test:llm:breaker:refused-{time.time_ns()}:"
    llm.reset_client()
    try:
        error = _unavailable()
    finally:
        breaker.reset()
        llm.reset_client()

    assert (error.reason, error.attempts) == ("connection", 3)


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"category": "billing"}), json.dumps({**TRIAGE, "priority": "whenever"})],
    ids=["malformed", "missing-fields", "invalid-value"],
)
def test_an_unusable_answer_is_retried_once_then_bad_response(fake, content):
    fake.enqueue(content=content, usage=(100, 10))
    fake.enqueue(content=content, usage=(100, 10))
    fake.enqueue(content=TRIAGE, usage=(100, 10))

    error = _unavailable(schema=Triage)

    assert (error.reason, error.attempts) == ("bad_response", 2)
    assert fake.request_count == 2
    # What the two answers cost is reported, so the caller can record it.
    assert (error.tokens_in, error.tokens_out) == (200, 20)
    assert error.cost == llm.cost_for("gpt-4o-mini", 200, 20) == Decimal("0.000042")
    assert breaker.status()["failures"] == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html>a proxy's page</html>", "text/html"),
        ("<html>a proxy's page</html>", "application/json"),
        ({"object": "chat.completion", "choices": []}, "application/json"),
    ],
    ids=["html", "html-labelled-json", "no-choices"],
)
def test_a_response_that_is_not_a_completion_is_bad_response(fake, body, content_type):
    for _ in range(2):
        fake.enqueue(body=body, headers={"Content-Type": content_type})

    error = _unavailable()

    assert (error.reason, error.attempts) == ("bad_response", 2)
    assert fake.request_count == 2


def test_quota_exhausted_is_never_retried(fake):
    fake.enqueue_quota_exceeded()
    fake.enqueue(content=TRIAGE)

    error = _unavailable()

    assert (error.reason, error.attempts) == ("quota", 1)
    assert fake.request_count == 1
    assert breaker.status()["failures"] == 1  # an availability failure


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_refused_without_retry(fake, status):
    fake.enqueue(status=status)
    fake.enqueue(content=TRIAGE)

    error = _unavailable()

    assert (error.reason, error.attempts) == ("refused", 1)
    assert fake.request_count == 1
    assert breaker.status()["failures"] == 0  # not the endpoint's availability


# --- cost


def test_cost_from_the_price_table_and_overrides(settings, caplog):
    assert llm.cost_for("gpt-4o-mini", 1_000_000, 1_000_000) == Decimal("0.750000")
    assert llm.cost_for("gpt-4o", 1000, 500) == Decimal("0.007500")
    assert llm.cost_for("gpt-4o-2024-08-06", 1000, 500) == Decimal("0.007500")  # a dated snapshot
    assert llm.cost_for("gpt-4o-mini-2024-07-18", 1000, 1000) == Decimal("0.000750")
    assert llm.cost_for("gpt-4o-audio-preview", 1000, 1000) == Decimal(0)  # not priced as gpt-4o

    settings.LLM_PRICES = {"gpt-4o-mini": {"input": 1, "output": 2}, "llama-3.1-8b": {"input": 0.05, "output": 0.08}}
    assert llm.cost_for("gpt-4o-mini", 1000, 500) == Decimal("0.002000")
    assert llm.cost_for("llama-3.1-8b", 1_000_000, 0) == Decimal("0.050000")

    model = f"mystery-model-{time.time_ns()}"
    with caplog.at_level(logging.WARNING, logger="supportflow.llm.client"):
        assert llm.cost_for(model, 1000, 1000) == Decimal(0)
        assert llm.cost_for(model, 5, 5) == Decimal(0)
    assert len([record for record in caplog.records if model in record.getMessage()]) == 1


def test_cost_is_summed_over_attempts_with_the_configured_prices(fake, settings):
    settings.LLM_PRICES = {"gpt-4o-mini": {"input": "2", "output": "4"}}
    fake.enqueue(content="{truncated", usage=(1000, 100))
    fake.enqueue(status=500)  # no usage on an error
    fake.enqueue(content=TRIAGE, usage=(1200, 150))

    result = llm.chat(task="triage", messages=MESSAGES, schema=Triage)

    assert (result.attempts, result.tokens_in, result.tokens_out) == (3, 2200, 250)
    assert result.cost == Decimal("0.005400")  # 2200 × 2/1M + 250 × 4/1M


# --- circuit breaker


@pytest.fixture
def quick_breaker(fake, settings):
    settings.LLM_MAX_ATTEMPTS = 1
    settings.LLM_BREAKER_FAILURES = 2
    settings.LLM_BREAKER_COOLDOWN_S = 1
    return fake


def _open_the_breaker(fake: FakeOpenAI) -> None:
    for _ in range(2):
        fake.enqueue(status=502)
        assert _unavailable().reason == "server_error"


def test_breaker_opens_after_failures_and_stops_requests(quick_breaker, caplog):
    fake = quick_breaker
    with caplog.at_level(logging.WARNING, logger="supportflow.llm.breaker"):
        _open_the_breaker(fake)

    assert [r.levelname for r in caplog.records if "breaker opened" in r.getMessage()] == ["WARNING"]

    status = breaker.status()
    assert status["state"] == "open"
    assert status["retry_at"] == pytest.approx(status["opened_at"] + 1, abs=0.01)

    fake.enqueue(content=TRIAGE)
    started = time.monotonic()
    error = _unavailable()
    assert (error.reason, error.attempts) == ("breaker_open", 0)
    assert time.monotonic() - started < 0.5
    assert fake.request_count == 2  # nothing reached the server


def test_breaker_state_is_shared_across_connections(quick_breaker, settings):
    _open_the_breaker(quick_breaker)

    # Another process: its own Redis connection, its own SDK client.
    breaker.close_connections()
    llm.reset_client()
    assert breaker.status()["state"] == "open"
    other = redis.Redis.from_url(settings.LLM_BREAKER_REDIS_URL)
    try:
        assert other.hexists(f"{settings.LLM_BREAKER_KEY_PREFIX}state", "open_until")
    finally:
        other.close()
    assert _unavailable().reason == "breaker_open"


def test_after_the_cooldown_one_probe_goes_through_and_closes_the_breaker(quick_breaker):
    fake = quick_breaker
    _open_the_breaker(fake)
    time.sleep(1.05)
    assert breaker.status()["state"] == "half_open"

    fake.enqueue(content=TRIAGE, delay=0.5)
    probe: dict = {}
    thread = threading.Thread(target=lambda: probe.update(result=llm.chat(task="triage", messages=MESSAGES)))
    thread.start()
    time.sleep(0.2)  # the probe is in flight
    other = _unavailable()
    thread.join(timeout=5)

    assert other.reason == "breaker_open"  # only one caller gets the probe
    assert probe["result"].attempts == 1
    assert fake.request_count == 3
    assert breaker.status() == {"state": "closed", "failures": 0, "opened_at": None, "retry_at": None}
    assert llm.chat(task="reply", messages=MESSAGES).text == "OK"


def test_a_failed_probe_reopens_for_another_cooldown(quick_breaker):
    fake = quick_breaker
    _open_the_breaker(fake)
    first_retry_at = breaker.status()["retry_at"]
    time.sleep(1.05)

    fake.enqueue(status=500)
    assert _unavailable().reason == "server_error"

    status = breaker.status()
    assert status["state"] == "open"
    assert status["retry_at"] > first_retry_at + 0.9
    assert _unavailable().reason == "breaker_open"
    assert fake.request_count == 3


def test_a_success_in_closed_state_resets_the_failure_count(fake, settings):
    settings.LLM_MAX_ATTEMPTS = 1
    settings.LLM_BREAKER_FAILURES = 3
    for status in (500, 200, 500, 500):
        fake.enqueue(status=status)
    for _ in range(4):
        with contextlib.suppress(llm.LLMUnavailable):
            llm.chat(task="reply", messages=MESSAGES)

    assert breaker.status()["state"] == "closed"
    assert breaker.status()["failures"] == 2


def test_an_unreachable_breaker_redis_counts_as_closed(fake, settings):
    settings.LLM_BREAKER_REDIS_URL = f"redis://127.0.0.1:{_free_port()}/0"

    result = llm.chat(task="reply", messages=MESSAGES)

    assert result.text == "OK"
    assert breaker.status()["state"] == "closed"
    breaker.close_connections()


# --- readiness


@pytest.mark.django_db
def test_readyz_shows_the_breaker_without_failing(client, quick_breaker):
    response = client.get(reverse("readyz"))
    assert response.status_code == 200
    assert response.json()["info"]["llm"] == "openai: closed"

    _open_the_breaker(quick_breaker)
    response = client.get(reverse("readyz"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["info"]["llm"] == "openai: breaker open, falling back to local"
