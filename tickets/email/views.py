"""HTTP interfaces of the email channel: the provider inbound hook (raw MIME), attachment downloads, and the
pages our emails link to — the rating page of a CSAT survey and the unsubscribe page (with RFC 8058's
one-click POST). The customer pages open only through their signed tokens (``links``) and answer in the
conversation's (or the email's) language."""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from supportflow import ratelimit
from supportflow.storage import StorageUnavailable
from tickets import languages, selectors, services
from tickets.email import inbound, links, storage, subscriptions
from tickets.forms import CsatForm
from tickets.models import Attachment

logger = logging.getLogger(__name__)
SCORES = (1, 2, 3, 4, 5)


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
        return _error(_("The file store is unavailable right now. Try again in a minute."), 503, Retry_After="60")
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


def _too_many(request: HttpRequest, scope: str) -> HttpResponse | None:
    """A 429 when this address opens our email links too fast (``EMAIL_LINK_RATE_PER_IP``), else None."""
    verdict = ratelimit.hit(scope, ratelimit.request_ip(request), ratelimit.parse(settings.EMAIL_LINK_RATE_PER_IP))
    if verdict.allowed:
        return None
    text = _("Too many requests from your network. Try again in %(seconds)s s.") % {"seconds": verdict.retry_after}
    response = HttpResponse(text, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(verdict.retry_after)
    return response


def _score(value) -> int | None:
    try:
        score = int(value)
    except (TypeError, ValueError):
        return None
    return score if score in SCORES else None


@require_http_methods(["GET", "POST"])
def email_rate(request: HttpRequest, token: str) -> HttpResponse:
    """The page a rating link of a CSAT survey opens: GET shows the score clicked (``?score=``) ready to send,
    with room for a comment; only the POST (CSRF-protected) records it, so a link scanner rates nothing."""
    if refusal := _too_many(request, "email-rate"):
        return refusal
    ticket = links.csat_ticket(token=token)
    languages.activate_for_request(request, ticket)
    form = CsatForm(request.POST if request.method == "POST" else None)
    error, status = "", 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.ticket_record_csat(
                    ticket=ticket, score=form.cleaned_data["score"], comment=form.cleaned_data["comment"]
                )
            except services.TicketRuleError as exc:
                error, status = str(exc), 400
            else:
                return redirect(reverse("email-rate", args=[token]) + "?done=1")
        else:
            error, status = " ".join(e for errors in form.errors.values() for e in errors), 400
    context = {
        "ticket": ticket,
        "token": token,
        "scores": SCORES,
        "selected": _score(request.POST.get("score") or request.GET.get("score")) or ticket.csat_score,
        "comment": request.POST.get("comment", "") or ticket.csat_comment,
        "error": error,
        "done": request.method == "GET" and "done" in request.GET,
    }
    return render(request, "tickets/email/rate.html", context, status=status)


def _csrf_refusal(request: HttpRequest) -> HttpResponse | None:
    """Django's CSRF check, run by hand for the one view that must skip it for RFC 8058's one-click POST."""
    return CsrfViewMiddleware(lambda _request: None).process_view(request, None, (), {})


@csrf_exempt  # only for the RFC 8058 one-click POST; every other POST is checked in the view (_csrf_refusal)
@require_http_methods(["GET", "POST"])
def email_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The unsubscribe link of our emails (``List-Unsubscribe``).

    - GET: a page that says what stops, with a button (a POST with the CSRF token) — opening the link
      changes nothing, so a link scanner unsubscribes nobody;
    - POST ``List-Unsubscribe=One-Click`` (RFC 8058): what a mail client's own "Unsubscribe" button sends,
      without cookies: the signed token is the authority; 200 in plain text;
    - POST ``action=unsubscribe|resubscribe`` from the page (CSRF-checked), then back to the page.
    """
    one_click = request.method == "POST" and request.POST.get("List-Unsubscribe") == "One-Click"
    if request.method == "POST" and not one_click and (refusal := _csrf_refusal(request)):
        return refusal
    if refusal := _too_many(request, "email-unsubscribe"):
        return refusal
    customer, language = links.unsubscribe_customer(token=token)
    if language:
        translation.activate(language)
        request.LANGUAGE_CODE = language
    if one_click:
        subscriptions.customer_email_unsubscribe(customer=customer)
        return HttpResponse(_("You are unsubscribed."), content_type="text/plain; charset=utf-8")
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "unsubscribe":
            subscriptions.customer_email_unsubscribe(customer=customer)
        elif action == "resubscribe":
            subscriptions.customer_email_resubscribe(customer=customer)
        else:
            return HttpResponse(
                _("Choose to unsubscribe or to subscribe again."), status=400, content_type="text/plain; charset=utf-8"
            )
        return redirect("email-unsubscribe", token=token)
    return render(request, "tickets/email/unsubscribe.html", {"customer": customer, "token": token})
