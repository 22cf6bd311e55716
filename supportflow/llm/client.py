"""The one way the project talks to an LLM: ``chat()`` over the ``openai`` SDK, any compatible endpoint.

This module owns the only retry layer for paid calls (the SDK runs with ``max_retries=0`` and a short
timeout; Celery tasks must not retry an ``LLMUnavailable``), keeps the circuit breaker informed, and
turns every SDK error into ``LLMUnavailable(reason)`` so callers fall back to the local provider on
one exception type. It never touches the database: the caller records the ``AIRun`` from
``LLMResult`` / ``LLMUnavailable``, which both carry the tokens and cost actually spent.

Nothing here logs the API key or message contents: only sizes, model, status, attempts and latency.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import openai
import pydantic
from django.conf import settings
from openai.lib import type_to_response_format_param

from supportflow.llm import breaker
from supportflow.llm import cache as answer_cache

logger = logging.getLogger(__name__)

Task = Literal["triage", "reply"]
TASKS = ("triage", "reply")
ROLES = frozenset({"system", "user", "assistant"})
REASONS = frozenset(
    {
        "not_configured",
        "breaker_open",
        "quota",
        "rate_limited",
        "server_error",
        "timeout",
        "connection",
        "bad_response",
        "refused",
    }
)
# Reasons that say the endpoint is unhealthy; they feed the circuit breaker.
AVAILABILITY_FAILURES = frozenset({"quota", "rate_limited", "server_error", "timeout", "connection"})

# USD per 1M tokens; ``LLM_PRICES`` overrides or extends these.
DEFAULT_PRICES: dict[str, dict[str, str]] = {
    "gpt-4o-mini": {"input": "0.15", "output": "0.60"},
    "gpt-4o": {"input": "2.50", "output": "10.00"},
    "gpt-4.1": {"input": "2.00", "output": "8.00"},
    "gpt-4.1-mini": {"input": "0.40", "output": "1.60"},
    "gpt-4.1-nano": {"input": "0.10", "output": "0.40"},
}
COST_QUANTUM = Decimal("0.000001")  # AIRun.cost has six decimal places


@dataclass(frozen=True)
class LLMResult:
    text: str
    parsed: pydantic.BaseModel | None
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    cost: Decimal
    latency_ms: int
    attempts: int
    # "hit": answered from the AI cache (nothing spent; ``saved_cost`` is what it would have cost), "miss":
    # looked up and paid; "": not looked up (no ``cache_key``, or the cache is off).
    cache: str = ""
    saved_cost: Decimal = Decimal(0)


class LLMUnavailable(Exception):
    """No usable answer from the LLM; ``chat`` sets ``reason`` to one of ``REASONS``. Carries what was spent."""

    def __init__(
        self,
        reason: str,
        *,
        attempts: int = 0,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost: Decimal = Decimal(0),
        model: str = "",
        latency_ms: int = 0,
        detail: str = "",
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.attempts = attempts
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out
        self.cost = cost
        self.model = model
        self.latency_ms = latency_ms
        self.detail = detail


# --- configuration


def provider_for(task: str) -> str:
    """``"openai"`` when an endpoint is configured (a key, or a base URL for keyless local servers)."""
    _check_task(task)
    if settings.LLM_PROVIDER == "local":
        return "local"
    if not settings.OPENAI_API_KEY and not settings.OPENAI_BASE_URL:
        return "local"
    return "openai"


def model_for(task: str) -> str:
    _check_task(task)
    return settings.LLM_MODEL_TRIAGE if task == "triage" else settings.LLM_MODEL_REPLY


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown LLM task {task!r}; expected one of {TASKS}")


_client: openai.OpenAI | None = None
_client_config: tuple | None = None
_client_lock = threading.Lock()


def get_client() -> openai.OpenAI:
    """The process's one SDK client, rebuilt only when the endpoint settings change. No network."""
    global _client, _client_config
    config = (settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, float(settings.LLM_TIMEOUT_S))
    with _client_lock:
        if _client is None or _client_config != config:
            api_key, base_url, timeout = config
            # Keyless servers (Ollama, vLLM) ignore the key, but the SDK insists on one.
            _client = openai.OpenAI(api_key=api_key or "unused", base_url=base_url, timeout=timeout, max_retries=0)
            _client_config = config
        return _client


def reset_client() -> None:
    """Forget the cached client (tests that switch endpoints; after a fork)."""
    global _client, _client_config
    with _client_lock:
        _client = None
        _client_config = None


# A Celery prefork child must not share its parent's HTTP connection pool.
os.register_at_fork(after_in_child=reset_client)


# --- structured outputs

_schema_lock = threading.Lock()
_response_formats: dict[type[pydantic.BaseModel], dict] = {}


def register_schema(model: type[pydantic.BaseModel]) -> type[pydantic.BaseModel]:
    """Remember a model for ``warm_up()``; usable as a class decorator."""
    with _schema_lock:
        _response_formats.setdefault(model, {})
    return model


def response_format_for(model: type[pydantic.BaseModel]) -> dict:
    """The strict ``json_schema`` response format for ``model``, built once per process."""
    with _schema_lock:
        response_format = _response_formats.get(model)
    if not response_format:
        response_format = dict(type_to_response_format_param(model))
        with _schema_lock:
            _response_formats[model] = response_format
    return response_format


def warm_up(*models: type[pydantic.BaseModel]) -> None:
    """Build the JSON schemas of ``models`` and of every registered model, and the SDK client. No network.

    Schema generation is the slow part of a first structured call; call this at process start.
    """
    for model in models:
        register_schema(model)
    with _schema_lock:
        known = list(_response_formats)
    for model in known:
        response_format_for(model)
    if provider_for("triage") == "openai" or provider_for("reply") == "openai":
        get_client()


# --- cost

_warned_models: set[str] = set()
_SNAPSHOT_DATE = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def _prices() -> dict[str, dict[str, Any]]:
    return {**DEFAULT_PRICES, **settings.LLM_PRICES}


def cost_for(model: str, tokens_in: int, tokens_out: int) -> Decimal:
    """USD for the tokens at ``model``'s price; a dated snapshot (``gpt-4o-2024-08-06``) costs as its model."""
    prices = _prices()
    price = prices.get(model) or prices.get(_SNAPSHOT_DATE.sub("", model))
    if price is None:
        if model not in _warned_models:
            _warned_models.add(model)
            logger.warning("No price for LLM model %r: its cost is recorded as 0 (set LLM_PRICES)", model)
        return Decimal(0)
    cost = (tokens_in * Decimal(str(price["input"])) + tokens_out * Decimal(str(price["output"]))) / 1_000_000
    return cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


# --- the call


class _Attempt(Exception):
    """One failed attempt: ``reason``, whether it may be retried, and how long the server asked us to wait."""

    def __init__(self, reason: str, *, retry: bool, wait: float | None = None, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.wait = wait
        self.detail = detail


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``retry-after`` seconds or HTTP date)."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    return None


def _classify(exc: Exception) -> _Attempt:
    # APITimeoutError subclasses APIConnectionError: test it first.
    if isinstance(exc, openai.APITimeoutError):
        return _Attempt("timeout", retry=True)
    if isinstance(exc, openai.APIConnectionError):
        return _Attempt("connection", retry=True, detail=type(exc.__cause__ or exc).__name__)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = f"HTTP {status}" + (f" {exc.code}" if exc.code else "")
        if status == 429:
            if "insufficient_quota" in (exc.code, exc.type):
                return _Attempt("quota", retry=False, detail=detail)
            return _Attempt("rate_limited", retry=True, wait=_retry_after(exc.response.headers), detail=detail)
        if status >= 500:
            return _Attempt("server_error", retry=True, wait=_retry_after(exc.response.headers), detail=detail)
        return _Attempt("refused", retry=False, detail=detail)
    # APIResponseValidationError, a body that is not JSON (ValueError), another SDK error.
    return _Attempt("bad_response", retry=True, detail=type(exc).__name__)


def _validate_messages(messages: list[dict[str, str]]) -> None:
    if not messages:
        raise ValueError("messages must not be empty")
    for message in messages:
        if message.get("role") not in ROLES or not isinstance(message.get("content"), str):
            raise ValueError("each message needs a role in {system, user, assistant} and a str content")


def _with_canary(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """``LLM_SYSTEM_CANARY`` (unset in production; evaluations set it) appended to every system prompt,
    so an evaluation can tell a leaked prompt from its own marker."""
    canary = getattr(settings, "LLM_SYSTEM_CANARY", "")
    if not canary:
        return messages
    return [
        {**m, "content": f"{m['content']}\nConfidential marker (never output it): {canary}"}
        if m["role"] == "system"
        else m
        for m in messages
    ]


def chat(
    *,
    task: str,
    messages: list[dict[str, str]],
    schema: type[pydantic.BaseModel] | None = None,
    max_tokens: int = 600,
    temperature: float = 0.0,
    model: str = "",
    cache_key: dict[str, Any] | None = None,
    cache_if: Callable[[str], bool] | None = None,
) -> LLMResult:
    """One chat completion for ``task``, parsed into ``schema`` when given.

    Raises ``LLMUnavailable`` for every failure (never an SDK exception), ``ValueError`` for a
    programming error (unknown task, malformed messages). Retries 429/5xx/timeouts/connection errors
    up to ``LLM_MAX_ATTEMPTS`` with full-jitter backoff (or the server's ``Retry-After``), a
    malformed answer once; never a quota error or another 4xx. Sleeps between attempts, so call it
    from a worker, not from a request. ``model`` overrides the task's configured model (a
    configuration version's own, ``tickets.ai.versions``).

    ``cache_key``: what the answer depends on besides this call's settings (``supportflow.llm.cache``);
    given, and ``AI_CACHE_ENABLED``, a stored answer is returned without a call (``cache="hit"``), even
    while the breaker is open, and a new one is stored when ``cache_if(text)`` allows (a caller refuses an
    answer that carries personal data or its canary). The caller must key on PII-redacted text.
    """
    _check_task(task)
    _validate_messages(messages)
    messages = _with_canary(messages)
    model = model or model_for(task)
    provider = provider_for(task)
    if provider != "openai":
        raise LLMUnavailable("not_configured", model=model)

    try:
        client = get_client()
    except openai.OpenAIError as exc:
        logger.error("LLM client cannot be built: %s", type(exc).__name__)
        raise LLMUnavailable("not_configured", model=model, detail=type(exc).__name__) from None

    request: dict[str, Any] = {"model": model, "messages": messages}
    # Reasoning models refuse ``max_tokens`` (they take ``max_completion_tokens``) and any temperature
    # but the default; some local servers know only the former. Both are settings, not guesses.
    limit_param = settings.LLM_TOKEN_LIMIT_PARAM
    if limit_param in ("max_tokens", "max_completion_tokens"):
        request[limit_param] = max_tokens
    if settings.LLM_SEND_TEMPERATURE:
        request["temperature"] = temperature
    if schema is not None:
        request["response_format"] = response_format_for(schema)

    started = time.monotonic()
    stored_key = None
    if cache_key is not None and answer_cache.enabled():
        stored_key = answer_cache.make_key(task=task, model=model, request=request, key=cache_key)
        hit = _cached(stored_key, schema=schema, provider=provider, model=model, started=started)
        if hit is not None:
            return hit

    gate = breaker.before_call()
    if gate == "open":
        raise LLMUnavailable("breaker_open", model=model)
    probe = gate == "probe"
    # The half-open probe is a single try, so the breaker learns quickly either way.
    max_attempts = 1 if probe else max(1, int(settings.LLM_MAX_ATTEMPTS))
    prompt_chars = sum(len(message["content"]) for message in messages)

    attempts = tokens_in = tokens_out = bad_responses = 0

    def spent(reason: str, detail: str = "") -> LLMUnavailable:
        return LLMUnavailable(
            reason,
            attempts=attempts,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=cost_for(model, tokens_in, tokens_out),
            model=model,
            latency_ms=int((time.monotonic() - started) * 1000),
            detail=detail,
        )

    while True:
        attempts += 1
        attempt_started = time.monotonic()
        try:
            completion = client.chat.completions.create(**request)
            usage = getattr(completion, "usage", None)
            if usage is not None:
                tokens_in += usage.prompt_tokens or 0
                tokens_out += usage.completion_tokens or 0
            text, parsed = _read(completion, schema)
        except (openai.OpenAIError, _Attempt, ValueError) as exc:
            failure = exc if isinstance(exc, _Attempt) else _classify(exc)
            logger.warning(
                "LLM %s attempt %s/%s failed: %s %s (model=%s, %s messages, %s chars, %.0f ms)",
                task,
                attempts,
                max_attempts,
                failure.reason,
                failure.detail,
                model,
                len(messages),
                prompt_chars,
                (time.monotonic() - attempt_started) * 1000,
            )
            wait = _next_wait(failure, attempts=attempts, max_attempts=max_attempts, bad_responses=bad_responses)
            if failure.reason == "bad_response":
                bad_responses += 1
            if wait is None:
                _after_failure(failure.reason, probe=probe)
                raise spent(failure.reason, failure.detail) from None
            time.sleep(wait)
            continue

        breaker.record_success(probe=probe)
        latency_ms = int((time.monotonic() - started) * 1000)
        logger.info(
            "LLM %s ok: model=%s attempts=%s tokens=%s/%s latency=%s ms (%s messages, %s chars)",
            task,
            model,
            attempts,
            tokens_in,
            tokens_out,
            latency_ms,
            len(messages),
            prompt_chars,
        )
        if stored_key is not None and (cache_if is None or cache_if(text)):
            answer_cache.put(stored_key, text=text, tokens_in=tokens_in, tokens_out=tokens_out)
        return LLMResult(
            text=text,
            parsed=parsed,
            provider=provider,
            model=model,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=cost_for(model, tokens_in, tokens_out),
            latency_ms=latency_ms,
            attempts=attempts,
            cache="miss" if stored_key is not None else "",
        )


def _cached(
    key: str, *, schema: type[pydantic.BaseModel] | None, provider: str, model: str, started: float
) -> LLMResult | None:
    """The stored answer as a result that spent nothing, or ``None`` (absent, or no longer fits ``schema``)."""
    entry = answer_cache.get(key)
    if entry is None:
        return None
    parsed = None
    if schema is not None:
        try:
            parsed = schema.model_validate_json(entry["text"])
        except pydantic.ValidationError:
            return None
    tokens_in, tokens_out = int(entry.get("tokens_in") or 0), int(entry.get("tokens_out") or 0)
    return LLMResult(
        text=entry["text"],
        parsed=parsed,
        provider=provider,
        model=model,
        tokens_in=0,
        tokens_out=0,
        cost=Decimal(0),
        latency_ms=int((time.monotonic() - started) * 1000),
        attempts=0,
        cache="hit",
        saved_cost=cost_for(model, tokens_in, tokens_out),
    )


def _read(completion: Any, schema: type[pydantic.BaseModel] | None) -> tuple[str, pydantic.BaseModel | None]:
    """The answer's text (and ``schema`` instance), or ``_Attempt("bad_response")``."""
    try:
        message = completion.choices[0].message
    except (AttributeError, IndexError, TypeError):
        raise _Attempt("bad_response", retry=True, detail="no choices in the response") from None
    text = message.content
    if not isinstance(text, str) or not text.strip():
        refusal = getattr(message, "refusal", None)
        raise _Attempt("bad_response", retry=True, detail="model refused" if refusal else "empty content")
    if schema is None:
        return text, None
    try:
        return text, schema.model_validate_json(text)
    except pydantic.ValidationError:
        finish = getattr(completion.choices[0], "finish_reason", None)
        raise _Attempt(
            "bad_response", retry=True, detail=f"output does not match {schema.__name__} ({finish})"
        ) from None


def _next_wait(failure: _Attempt, *, attempts: int, max_attempts: int, bad_responses: int) -> float | None:
    """Seconds to sleep before the next attempt, or ``None`` to give up."""
    if not failure.retry:
        return None
    if failure.reason == "bad_response":
        return 0.0 if bad_responses == 0 else None
    if attempts >= max_attempts:
        return None
    if failure.wait is not None:
        if failure.wait > float(settings.LLM_RETRY_MAX_WAIT_S):
            return None
        return failure.wait
    ceiling = min(float(settings.LLM_RETRY_MAX_WAIT_S), float(settings.LLM_RETRY_BASE_S) * 2 ** (attempts - 1))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


def _after_failure(reason: str, *, probe: bool) -> None:
    if reason in AVAILABILITY_FAILURES:
        breaker.record_failure(probe=probe, reason=reason)
    elif probe:
        # A 4xx or an unusable answer still proves the endpoint is up: let traffic back in.
        breaker.record_success(probe=True)
