"""Inbound integration endpoints: verify, parse, one service call, a quick JSON answer.

Bad signatures and stale timestamps get 401, malformed bodies 400; a verified request is always
answered 200 (Slack retries anything slower than 3 s or not 2xx)."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from supportflow import discord, slack

MAX_BODY_BYTES = 1024 * 1024


def _json(request: HttpRequest) -> dict | None:
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


@csrf_exempt
@require_POST
def slack_events(request: HttpRequest) -> JsonResponse:
    if len(request.body) > MAX_BODY_BYTES:
        return JsonResponse({"error": "Body too large."}, status=413)
    try:
        slack.slack_request_verify(
            body=request.body,
            timestamp=request.headers.get("X-Slack-Request-Timestamp", ""),
            signature=request.headers.get("X-Slack-Signature", ""),
        )
    except slack.SlackAuthError as exc:
        return JsonResponse({"error": str(exc)}, status=401)
    envelope = _json(request)
    if envelope is None:
        return JsonResponse({"error": "The body must be a JSON object."}, status=400)
    return JsonResponse(slack.slack_event_handle(envelope=envelope))


@csrf_exempt
@require_POST
def discord_interactions(request: HttpRequest) -> JsonResponse:
    if len(request.body) > MAX_BODY_BYTES:
        return JsonResponse({"error": "Body too large."}, status=413)
    try:
        discord.discord_request_verify(
            body=request.body,
            timestamp=request.headers.get("X-Signature-Timestamp", ""),
            signature=request.headers.get("X-Signature-Ed25519", ""),
        )
    except discord.DiscordAuthError as exc:
        return JsonResponse({"error": str(exc)}, status=401)
    interaction = _json(request)
    if interaction is None:
        return JsonResponse({"error": "The body must be a JSON object."}, status=400)
    return JsonResponse(discord.discord_interaction_handle(interaction=interaction))
