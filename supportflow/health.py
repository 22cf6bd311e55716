"""Liveness, readiness and the Prometheus endpoint.

``/healthz`` answers as long as the process serves requests; ``/readyz`` checks the parts a request
needs (the database; the Redis of each role a web process uses: ``redis_broker``, ``redis_cache``,
``redis_channels``, one ping per distinct server) and names the failing ones with a 503, so a load
balancer or compose can hold traffic back without anyone reading a traceback. With an LLM endpoint
configured, ``info.llm`` shows its circuit breaker (an open breaker is not a failure: the local provider
takes over).
``info.ai_workers_ready`` counts the ``ai`` worker processes that are warm and taking tasks
(``supportflow.readiness``); it does not decide the web's readiness — a web process serves pages
whether or not a worker is up — but ``make run`` waits for it before it says "ready".
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

from supportflow import llm, readiness, redis_roles
from supportflow.resilience import RETRY_AFTER_S

logger = logging.getLogger(__name__)


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _ping(url: str) -> str:
    client = redis_roles.client(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


CHECKS = {"database": _check_database}
# The roles a web process cannot serve without: it enqueues tasks, caches and counts, and broadcasts. The
# locks role (beat lease, worker register) is the workers' and beat's concern, read here for information only.
WEB_REDIS_ROLES = ("broker", "cache", "channels")


def _check_redis_roles() -> dict[str, str]:
    """``redis_<role>`` → "ok" or why not; roles that share a server share one ping."""
    by_server: dict[str, list[str]] = {}
    for role in WEB_REDIS_ROLES:
        by_server.setdefault(redis_roles.server(redis_roles.role_url(role)), []).append(role)
    results: dict[str, str] = {}
    for roles in by_server.values():
        try:
            outcome = _ping(redis_roles.role_url(roles[0]))
        except Exception as exc:  # any failure of a dependency means "not ready", never a 500
            logger.warning("readiness check redis (%s) failed: %s", ", ".join(roles), exc)
            outcome = f"unavailable ({type(exc).__name__})"
        results.update({f"redis_{role}": outcome for role in roles})
    return results


def _llm_info() -> str | None:
    """The LLM endpoint's circuit breaker, when an endpoint is configured (``None`` with the local
    provider only). Informational: an open breaker means the local provider answers instead, so the
    service stays ready."""
    if llm.provider_for("reply") == "local":
        return None
    state = llm.breaker.status()["state"]
    if state == "open":
        return "openai: breaker open, falling back to local"
    if state == "half_open":
        return "openai: breaker half-open, probing"
    return "openai: closed"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # any failure of a dependency means "not ready", never a 500
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = f"unavailable ({type(exc).__name__})"
    results.update(_check_redis_roles())
    failing = [name for name, result in results.items() if result != "ok"]
    body = {"status": "ok" if not failing else "unavailable", "checks": results}
    if failing:
        body["failing"] = failing
    try:
        llm_info = _llm_info()
    except Exception as exc:  # information only: it never decides readiness
        logger.warning("readiness info llm failed: %s", exc)
        llm_info = f"unknown ({type(exc).__name__})"
    info: dict[str, object] = {"llm": llm_info} if llm_info else {}
    try:
        info["ai_workers_ready"] = readiness.ready("ai")
    except Exception as exc:  # information only, unless a deployment asks for it (below)
        logger.warning("readiness info ai workers failed: %s", exc)
        info["ai_workers_ready"] = f"unknown ({type(exc).__name__})"
    if info:
        body["info"] = info
    response = JsonResponse(body, status=503 if failing else 200)
    if failing:
        response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: with ``METRICS_TOKEN`` set, a bearer token is required; without, loopback only."""
    token = settings.METRICS_TOKEN
    if token:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            return HttpResponse(
                "Send the metrics token as 'Authorization: Bearer <METRICS_TOKEN>'.\n",
                status=401,
                content_type="text/plain",
            )
    elif not _is_loopback(request.META.get("REMOTE_ADDR", "")):
        return HttpResponse(
            "Metrics are served to loopback only; set METRICS_TOKEN to scrape from elsewhere.\n",
            status=403,
            content_type="text/plain",
        )
    return ExportToDjangoView(request)
