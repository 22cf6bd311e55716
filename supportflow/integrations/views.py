"""Inbound integration endpoints: verify, parse, one service call, a quick JSON answer.

Bad signatures and stale timestamps get 401, malformed bodies 400; a verified request is always
answered 200 (Slack retries anything slower than 3 s or not 2xx)."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from supportflow.api.parsers import contains_nul
from supportflow.integrations import discord, slack

MAX_BODY_BYTES = 1024 * 1024


def _verified_json(request: HttpRequest, verify, auth_error: type[Exception], **headers: str) -> dict | JsonResponse:
    """The request's JSON object once ``verify`` accepts its signature headers, or the error response:
    413 too large, 401 bad signature or stale timestamp, 400 not a JSON object or holding a NUL (which
    PostgreSQL cannot store, so an id or channel with one would fail the lookup)."""
    if len(request.body) > MAX_BODY_BYTES:
        return JsonResponse({"error": "Body too large."}, status=413)
    try:
        verify(body=request.body, **{name: request.headers.get(header, "") for name, header in headers.items()})
    except auth_error as exc:
        return JsonResponse({"error": str(exc)}, status=401)
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        return JsonResponse({"error": "The body must be a JSON object."}, status=400)
    if contains_nul(data):
        return JsonResponse({"error": "The body contains a NUL character (\\u0000)."}, status=400)
    return data


@csrf_exempt
@require_POST
def slack_events(request: HttpRequest) -> JsonResponse:
    envelope = _verified_json(
        request,
        slack.slack_request_verify,
        slack.SlackAuthError,
        timestamp="X-Slack-Request-Timestamp",
        signature="X-Slack-Signature",
    )
    if isinstance(envelope, JsonResponse):
        return envelope
    return JsonResponse(slack.slack_event_handle(envelope=envelope))


@csrf_exempt
@require_POST
def discord_interactions(request: HttpRequest) -> JsonResponse:
    interaction = _verified_json(
        request,
        discord.discord_request_verify,
        discord.DiscordAuthError,
        timestamp="X-Signature-Timestamp",
        signature="X-Signature-Ed25519",
    )
    if isinstance(interaction, JsonResponse):
        return interaction
    return JsonResponse(discord.discord_interaction_handle(interaction=interaction))
