"""HTTP interfaces of the email channel: the provider inbound hook (raw MIME) and attachment downloads."""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from supportflow.storage import StorageUnavailable
from tickets import selectors
from tickets.email import inbound, storage
from tickets.models import Attachment

logger = logging.getLogger(__name__)


def _error(text: str, status: int, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": text}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@csrf_exempt
@require_POST
def inbound_email(request: HttpRequest) -> HttpResponse:
    """POST one raw email (``Authorization: Bearer <INBOUND_EMAIL_TOKEN>``) → 202 with the ticket.

    404 while no token is configured; 401 for a wrong one; 413 over ``EMAIL_MAX_MESSAGE_BYTES``.
    A provider retry of the same Message-ID answers 202 ``duplicate`` and stores nothing twice.
    """
    expected = settings.INBOUND_EMAIL_TOKEN
    if not expected:
        raise Http404("Inbound email is not enabled.")
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        return _error("A valid bearer token is required.", 401, WWW_Authenticate='Bearer realm="inbound-email"')
    limit = settings.EMAIL_MAX_MESSAGE_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error("Bad Content-Length.", 400)
    if declared > limit:
        return _error(f"The email is larger than {limit:,} bytes.", 413)
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return _error(f"The email is larger than {limit:,} bytes.", 413)
    try:
        result = inbound.email_receive(raw=raw)
    except inbound.EmailRejected as exc:
        return _error(str(exc), exc.status)
    except StorageUnavailable:
        logger.exception("inbound email could not be stored; the provider is asked to retry")
        return _error("The email could not be stored right now; nothing was kept. Retry later.", 503, Retry_After="60")
    return JsonResponse(
        {
            "status": result.status,
            "ticket": result.ticket.reference if result.ticket else None,
            "message_id": result.record.msgid,
        },
        status=202,
    )


def _download(attachment: Attachment) -> HttpResponse:
    try:
        handle = storage.open_file(attachment.storage_name)
    except FileNotFoundError as exc:
        raise Http404("This file is no longer stored.") from exc
    except StorageUnavailable:
        logger.exception("attachment %s could not be read", attachment.pk)
        return _error(gettext("The file store is unavailable right now. Try again in a minute."), 503, Retry_After="60")
    response = FileResponse(
        handle, as_attachment=True, filename=attachment.filename, content_type=attachment.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def attachment_for_staff(request: HttpRequest, pk: int) -> HttpResponse:
    """For agents and managers (logged in to the console): only files of tickets they may see."""
    if not (request.user.is_authenticated and request.user.is_staff):
        return redirect_to_login(request.get_full_path(), "admin:login")
    return _download(selectors.attachment_get_for_user(user=request.user, pk=pk))


@require_GET
def attachment_for_customer(request: HttpRequest, token: str, pk: int) -> HttpResponse:
    """For the customer, through their signed conversation link."""
    return _download(selectors.attachment_get_for_customer(token=token, pk=pk))
