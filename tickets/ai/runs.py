"""AI-run bookkeeping: one ``AIRun`` row per paid (or local) call, claimed before the call so a
retried task never pays twice, finished once with its tokens, cost and latency (``run_once`` wraps a
call in all of it); the per-message lock that keeps two workers off one message; and the sweep that
re-enqueues customer messages the AI never finished."""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from contextlib import nullcontext
from decimal import Decimal

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from tickets import events, services
from tickets.models import ActorKind, AIRun, Message, Ticket

# --- the per-message lock ------------------------------------------------------------------------------


def _lock_key(message_id: int) -> str:
    return f"sf:ai:message:{message_id}"


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_gone(holder: str) -> bool:
    """Whether the process that holds a message's lock is dead: on this host, its pid is gone; elsewhere,
    its worker stopped beating (``supportflow.readiness``). When that cannot be told, it is alive."""
    host, _, pid = holder.rpartition(":")
    if not pid.isdigit():
        return False
    if host == socket.gethostname():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    from supportflow import readiness

    return readiness.gone("ai", holder)


def message_lock(message_id: int, *, timeout: int) -> bool:
    """Take the lock on a customer message for this process. A lock whose holder died (a pool process
    killed mid-task: its task is redelivered at once, ``reject_on_worker_lost``) is taken over instead of
    waiting out its timeout, so the customer waits for a healthy process, not for the lock to expire.
    Two processes that both take a dead holder's lock over are harmless: the pipeline is idempotent."""
    key = _lock_key(message_id)
    if cache.add(key, _me(), timeout=timeout):
        return True
    holder = cache.get(key)
    if holder is None:
        return cache.add(key, _me(), timeout=timeout)
    if isinstance(holder, str) and holder != _me() and _holder_gone(holder):
        cache.set(key, _me(), timeout=timeout)
        return True
    return False


def message_unlock(message_id: int) -> None:
    if cache.get(_lock_key(message_id)) == _me():
        cache.delete(_lock_key(message_id))


def messages_held(message_ids: list[int]) -> set[int]:
    """Of these messages, those some process holds the lock of (one round trip; a dead holder counts: this
    is a hint, ``message_locked`` is the answer). The cache failing holds none."""
    try:
        held = cache.get_many([_lock_key(pk) for pk in message_ids])
    except Exception:
        return set()
    return {pk for pk in message_ids if _lock_key(pk) in held}


def message_locked(message_id: int) -> bool:
    """Whether a live process is working on the message."""
    holder = cache.get(_lock_key(message_id))
    return holder is not None and not (isinstance(holder, str) and _holder_gone(holder))


def ai_run_begin(
    *,
    key: str,
    kind: str,
    provider: str,
    ticket: Ticket | None = None,
    message: Message | None = None,
    model: str = "",
    prompt_version: str = "",
    config_version_id: int | None = None,
) -> tuple[AIRun, bool]:
    """Claim the run identified by ``key``; ``(run, False)`` means it already exists: do not call again.

    The unique key makes a retried or duplicated task a no-op instead of a second paid call.
    """
    fields = {
        "key": key,
        "kind": kind,
        "provider": provider,
        "ticket": ticket,
        "message": message,
        "model": model,
        "prompt_version": prompt_version,
        "config_version_id": config_version_id,
    }
    try:
        if transaction.get_connection().in_atomic_block:  # a duplicate must not break the caller's transaction
            with transaction.atomic():
                return AIRun.objects.create(**fields), True
        return AIRun.objects.create(**fields), True  # autocommit: the INSERT is its own transaction
    except IntegrityError:
        return AIRun.objects.get(key=key), False


def ai_run_reclaim(*, run: AIRun) -> bool:
    """Take over a run that never finished (its worker died) or failed, to try once more.

    A succeeded run is never reclaimed (its result is reused). Two workers on the same message are
    kept apart by the pipeline's per-message lock, not here."""
    return (
        AIRun.objects.filter(pk=run.pk, status__in=[AIRun.Status.PENDING, AIRun.Status.FAILED]).update(
            status=AIRun.Status.PENDING, finished_at=None
        )
        == 1
    )


def ai_run_finish(
    *,
    run: AIRun,
    succeeded: bool,
    tokens_in: int = 0,
    tokens_out: int = 0,
    cost: Decimal | float | str = 0,
    latency_ms: int | None = None,
    error: str = "",
    model: str | None = None,
    attempts: int = 1,
    meta: dict | None = None,
) -> AIRun:
    """Record the outcome once (a pending run only) and add its cost to the ticket's AI cost.

    ``meta`` keeps what the run produced (e.g. the triage fields), so a rerun of the same work reuses
    it instead of paying for the call again."""
    cost = Decimal(str(cost))
    values = {
        "status": AIRun.Status.SUCCEEDED if succeeded else AIRun.Status.FAILED,
        "latency_ms": latency_ms,
        "error": error[:5000],
        "finished_at": timezone.now(),
        **({"model": model} if model else {}),
        **({"meta": meta} if meta is not None else {}),
    }
    # one statement needs no transaction of its own; a paid run also adds its cost to the ticket's
    with transaction.atomic() if cost and run.ticket_id else nullcontext():
        updated = AIRun.objects.filter(pk=run.pk, status=AIRun.Status.PENDING).update(
            tokens_in=F("tokens_in") + tokens_in,
            tokens_out=F("tokens_out") + tokens_out,
            cost=F("cost") + cost,
            attempts=F("attempts") + attempts,
            **values,
        )
        if updated and run.ticket_id and cost:
            Ticket.objects.filter(pk=run.ticket_id).update(ai_cost=F("ai_cost") + cost)
    if updated:  # this worker holds the message's lock and the run it began or reclaimed: no re-read
        for name, value in values.items():
            setattr(run, name, value)
        run.tokens_in += tokens_in
        run.tokens_out += tokens_out
        run.cost = (run.cost or Decimal(0)) + cost
        run.attempts += attempts
    else:
        run.refresh_from_db()
    if updated:  # observability (supportflow.metrics): once per finished run, with this finish's cost
        events.publish(
            events.AI_RUN_FINISHED,
            run_id=run.pk,
            ticket_id=run.ticket_id,
            run_kind=run.kind,
            provider=run.provider,
            status=run.status,
            latency_ms=run.latency_ms,
            cost=cost,
        )
    return run


def run_once(*, key: str, kind: str, ticket: Ticket, message: Message, provider: str, model: str, call, version=None):
    """Run ``call()`` (a model call) at most once per ``key``: a finished run's stored result is reused.
    ``version``: the ``tickets.ai.versions.Config`` that serves the conversation, recorded on the run.

    ``call`` returns ``(result: dict, usage: dict)``; it may raise ``llm.LLMUnavailable``, which is
    recorded (with what the attempts cost) and re-raised for the caller's fallback.
    """
    from supportflow import llm  # the SDK loads only where a model is called, not in every process

    run, created = ai_run_begin(
        key=key,
        kind=kind,
        provider=provider,
        ticket=ticket,
        message=message,
        model=model,
        prompt_version=version.label if version else "",
        config_version_id=version.pk if version else None,
    )
    if not created:
        if run.status == AIRun.Status.SUCCEEDED and "result" in run.meta:
            return run.meta["result"]
        if run.status == AIRun.Status.FAILED and run.meta.get("terminal"):
            raise llm.LLMUnavailable(run.meta.get("reason", "failed"), attempts=0, tokens_in=0, tokens_out=0, cost=0)
        ai_run_reclaim(run=run)
    started = time.monotonic()
    try:
        result, usage = call()
    except llm.LLMUnavailable as exc:
        ai_run_finish(
            run=run,
            succeeded=False,
            tokens_in=exc.tokens_in,
            tokens_out=exc.tokens_out,
            cost=exc.cost,
            latency_ms=_elapsed_ms(started),
            attempts=exc.attempts,
            error=exc.reason,
            meta={"terminal": True, "reason": exc.reason},
        )
        raise
    ai_run_finish(
        run=run,
        succeeded=True,
        tokens_in=usage.get("tokens_in", 0),
        tokens_out=usage.get("tokens_out", 0),
        cost=usage.get("cost", 0),
        latency_ms=_elapsed_ms(started),
        attempts=usage.get("attempts", 1),
        model=usage.get("model") or None,
        meta={"result": result, **usage.get("meta", {})},
    )
    return result


def usage_of(result) -> dict:
    usage = {
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        "cost": str(result.cost),
        "attempts": result.attempts,
        "model": result.model,
    }
    if getattr(result, "cache", ""):  # looked up in the AI cache: a hit spent nothing and saved this much
        usage["meta"] = {"cache": result.cache, "saved_cost": str(result.saved_cost)}
    return usage


def _elapsed_ms(since: float) -> int:
    return round((time.monotonic() - since) * 1000)


STALLED_AFTER = dt.timedelta(minutes=3)
STALLED_WINDOW = dt.timedelta(days=1)
MAX_REQUEUES = 3


def ai_requeue_stalled(*, now: dt.datetime | None = None) -> int:
    """Find the latest customer message of each active ticket that has no AI decision although it is
    older than a worker could take, and enqueue it again; after ``MAX_REQUEUES`` give it to a human.

    The broker redelivers a task whose worker was killed only after its visibility timeout (1 h); this
    sweep (every minute) brings that down to minutes. A message being worked on holds the pipeline's
    lock and is skipped; the pipeline is idempotent, so a requeue never sends twice.
    """
    now = now or timezone.now()
    latest = (
        Message.objects.filter(
            author_kind=Message.AuthorKind.CUSTOMER,
            is_internal=False,
            created_at__lt=now - STALLED_AFTER,
            created_at__gt=now - STALLED_WINDOW,
            ticket__status__in=Ticket.ACTIVE_STATUSES,
            ai_draft__isnull=True,
        )
        .order_by("ticket_id", "-seq")
        .distinct("ticket_id")
        .values_list("pk", "ticket_id", "seq")
    )
    requeued = 0
    for message_id, ticket_id, seq in list(latest[:500]):
        if Message.objects.filter(ticket_id=ticket_id, author_kind=Message.AuthorKind.CUSTOMER, seq__gt=seq).exists():
            continue
        if message_locked(message_id):
            continue
        attempts = cache.get_or_set(f"sf:ai:requeued:{message_id}", 0, timeout=2 * 86400)
        if attempts >= MAX_REQUEUES:
            ticket = Ticket.objects.get(pk=ticket_id)
            if not ticket.escalated:
                services.ticket_escalate(
                    ticket=ticket, reason="The AI could not process this message", actor_kind=ActorKind.AI
                )
                services.ticket_auto_assign(ticket=ticket)
            continue
        cache.incr(f"sf:ai:requeued:{message_id}")
        from tickets.ai.tasks import process_message  # the door's task; it imports this module

        process_message.delay(message_id)
        requeued += 1
    return requeued
