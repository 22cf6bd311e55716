"""The customer's chat pages. The websocket (``tickets.consumers``) is the live path; these views
serve the page, the plain-POST fallback when websockets are unavailable, catch-up polling, and
the rating. Every view opens the conversation only through its signed token (``_open``), and answers
in the conversation's language (``tickets.languages``)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from supportflow import ratelimit
from tickets import languages, limits, realtime, selectors, services
from tickets.forms import AnswerFeedbackForm, ChatEmailForm, ChatLanguageForm, ChatSendForm, ChatStartForm, CsatForm
from tickets.models import Ticket

COOKIE_MAX_AGE = selectors.CUSTOMER_TOKEN_MAX_AGE


def _is_fragment_request(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _remember(response: HttpResponse, token: str) -> HttpResponse:
    response.set_cookie(
        settings.CHAT_COOKIE_NAME,
        token,
        max_age=COOKIE_MAX_AGE,
        path="/chat/",
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response


def _open(request: HttpRequest, token: str) -> Ticket:
    """The conversation behind ``token`` (404 otherwise); the request now speaks its language."""
    ticket = selectors.ticket_get_for_customer(token=token)
    languages.activate_for_request(request, ticket)
    return ticket


def _cookie_ticket(request: HttpRequest) -> tuple[Ticket | None, str]:
    token = request.COOKIES.get(settings.CHAT_COOKIE_NAME, "")
    if not token:
        return None, ""
    try:
        return selectors.ticket_get_for_customer(token=token), token
    except Http404:  # a bad, expired or revoked cookie simply means "no conversation yet"
        return None, ""


@require_http_methods(["GET", "POST"])
def chat_start(request: HttpRequest) -> HttpResponse:
    ticket, token = _cookie_ticket(request)
    resume_url = reverse("chat:conversation", args=[token]) if ticket and ticket.status != "closed" else ""
    if request.method == "GET" and resume_url and "new" not in request.GET:
        return redirect(resume_url)

    form = ChatStartForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        verdict = ratelimit.hit(
            "chat-start", ratelimit.request_ip(request), ratelimit.parse(settings.CHAT_RATE_START_PER_IP)
        )
        if not verdict.allowed:
            form.add_error(
                None,
                _("Too many new conversations from your network. Try again in %(seconds)s s.")
                % {"seconds": verdict.retry_after},
            )
            status = 429
        else:
            ui_language, chosen = languages.start_language(request)
            try:
                customer = services.customer_get_or_create(
                    email=form.cleaned_data["email"], name=form.cleaned_data["name"]
                )
                ticket = services.ticket_create(
                    customer=customer,
                    subject="",
                    body=form.cleaned_data["body"],
                    channel=Ticket.Channel.CHAT,
                    ui_language=ui_language,
                    ui_language_chosen=chosen,
                )
            except services.TicketRuleError as exc:
                form.add_error("body", str(exc))
                status = 400
            else:
                token = selectors.ticket_customer_token(ticket=ticket)
                return _remember(redirect("chat:conversation", token=token), token)
    elif request.method == "POST":
        status = 400
    return render(request, "tickets/chat_start.html", {"form": form, "resume_url": resume_url}, status=status)


def _conversation_page(
    request: HttpRequest,
    ticket: Ticket,
    token: str,
    *,
    error: str = "",
    draft: str = "",
    status: int = 200,
    widget: dict | None = None,
) -> HttpResponse:
    """The conversation page; ``widget``: the website widget's compact, framed variant (``tickets.widget``),
    which keeps no cookie (a third-party iframe's cookies are not sent back)."""
    messages = selectors.ticket_customer_messages(ticket=ticket)
    scheme = "wss" if request.is_secure() else "ws"
    context = {
        "ticket": ticket,
        "token": token,
        "messages": messages,
        "viewer": "customer",
        "ws_url": f"{scheme}://{request.get_host()}/ws/chat/{token}/",
        "max_length": settings.MESSAGE_MAX_LENGTH,
        "error": error,
        "draft": draft,
        "widget": widget,
    }
    page = render(request, "tickets/chat.html", context, status=status)
    return page if widget else _remember(page, token)


@require_GET
def chat_conversation(request: HttpRequest, token: str) -> HttpResponse:
    ticket = _open(request, token)
    if getattr(ticket, "followed_from", ""):  # merged into another ticket: its own link, from now on
        return redirect("chat:conversation", token=selectors.ticket_customer_token(ticket=ticket))
    return _conversation_page(request, ticket, token)


def _send_refusal(request, ticket, token, text: str, client_id: str, body: str, status: int) -> HttpResponse:
    if _is_fragment_request(request):
        return HttpResponse(realtime.render_notice("chat-error", text, client_id=client_id), status=status)
    return _conversation_page(request, ticket, token, error=text, draft=body, status=status)


@require_POST
def chat_send(request: HttpRequest, token: str) -> HttpResponse:
    """The fallback path: a plain form POST (no JS) or the page's script when the websocket is down."""
    ticket = _open(request, token)
    form = ChatSendForm(request.POST)
    body = request.POST.get("body", "")
    client_id = request.POST.get("client_id", "")[:64]
    if not form.is_valid():
        return _send_refusal(request, ticket, token, _("Write a message before sending."), client_id, body, 400)
    verdict, refused = ratelimit.hit_all(limits.send_limits(conversation=ticket.pk, ip=ratelimit.request_ip(request)))
    if not verdict.allowed:
        response = _send_refusal(request, ticket, token, limits.too_many(refused, verdict), client_id, body, 429)
        response["Retry-After"] = str(verdict.retry_after)
        return response
    try:
        message = services.message_create(
            ticket=ticket,
            author_kind="customer",
            body=form.cleaned_data["body"],
            client_msg_id=form.cleaned_data["client_id"],
        )
    except services.TicketRuleError as exc:
        return _send_refusal(request, ticket, token, str(exc), client_id, body, 400)
    if _is_fragment_request(request):
        return HttpResponse(realtime.render_messages([message], viewer="customer", token=token))
    return redirect(reverse("chat:conversation", args=[token]) + f"#msg-{message.seq}")


@require_GET
def chat_messages(request: HttpRequest, token: str) -> HttpResponse:
    """Catch-up while the websocket is down: public messages after ``after`` plus the status block."""
    ticket = _open(request, token)
    try:
        after = max(0, int(request.GET.get("after", "0")))
    except ValueError:
        return HttpResponse(_("'after' must be a whole number (the last message number you have)."), status=400)
    messages = selectors.ticket_customer_messages(ticket=ticket, after_seq=after, limit=200)
    html = realtime.render_messages(messages, viewer="customer", token=token) + realtime.render_status(
        ticket, token=token
    )
    return HttpResponse(html)


def _conversation_form(
    request: HttpRequest, token: str, form, apply, *, partial: str, error_key: str, extra: dict | None = None
) -> HttpResponse:
    """Shared by the small forms of the conversation page (rating, email): validate, apply through a
    service, answer htmx with the partial (errors in it) or a plain POST with a redirect/page."""
    ticket = _open(request, token)
    error = ""
    if form.is_valid():
        try:
            ticket = apply(ticket, form.cleaned_data)
        except services.TicketRuleError as exc:
            error = str(exc)
    else:
        error = " ".join(e for errors in form.errors.values() for e in errors)
    if _is_fragment_request(request):
        context = {"ticket": ticket, "token": token, error_key: error, **(extra or {})}
        return render(request, partial, context, status=400 if error else 200)
    if error:
        return _conversation_page(request, ticket, token, error=error, status=400)
    return redirect("chat:conversation", token=token)


@require_POST
def chat_rate(request: HttpRequest, token: str) -> HttpResponse:
    return _conversation_form(
        request,
        token,
        CsatForm(request.POST),
        lambda ticket, data: services.ticket_record_csat(ticket=ticket, score=data["score"], comment=data["comment"]),
        partial="tickets/chat.html#status",
        error_key="rating_error",
    )


@require_POST
def chat_email(request: HttpRequest, token: str) -> HttpResponse:
    """Email later: replies can then reach the customer by email too (the email channel comes later)."""
    return _conversation_form(
        request,
        token,
        ChatEmailForm(request.POST),
        lambda ticket, data: services.ticket_set_customer_email(ticket=ticket, email=data["email"]),
        partial="tickets/chat.html#email",
        error_key="email_error",
        extra={"email_value": request.POST.get("email", "")},
    )


def _conversation_action(request: HttpRequest, token: str) -> tuple[Ticket, HttpResponse | None]:
    """The conversation of ``token``, and a 429 when its clicks come too fast: a click counts against the
    same limits as a message (this conversation, this address)."""
    ticket = _open(request, token)
    verdict, refused = ratelimit.hit_all(limits.send_limits(conversation=ticket.pk, ip=ratelimit.request_ip(request)))
    if verdict.allowed:
        return ticket, None
    text = limits.too_many_clicks(refused, verdict)
    refusal = HttpResponse(text, status=429, content_type="text/plain; charset=utf-8")
    refusal["Retry-After"] = str(verdict.retry_after)
    return ticket, refusal


@require_POST
def chat_feedback(request: HttpRequest, token: str, seq: int) -> HttpResponse:
    """The customer's "Did this answer your question?" on one AI answer; "No" offers a person at once."""
    ticket, refusal = _conversation_action(request, token)
    if refusal:
        return refusal
    message = selectors.ticket_customer_answer(ticket=ticket, seq=seq)
    form = AnswerFeedbackForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            message = services.message_record_feedback(message=message, helpful=form.cleaned_data["helpful"] == "yes")
        except services.TicketRuleError as exc:
            error = str(exc)
    else:
        error = " ".join(e for errors in form.errors.values() for e in errors)
    if not _is_fragment_request(request):
        return (
            _conversation_page(request, ticket, token, error=error, status=400)
            if error
            else redirect("chat:conversation", token=token)
        )
    context = {"m": message, "token": token, "ticket": ticket, "feedback_error": error}
    return render(request, "tickets/chat.html#feedback", context, status=400 if error else 200)


@require_POST
def chat_person(request: HttpRequest, token: str) -> HttpResponse:
    """ "Talk to a person": handed over like the assistant would, once."""
    ticket, refusal = _conversation_action(request, token)
    if refusal:
        return refusal
    error = ""
    try:
        ticket = services.ticket_request_human(ticket=ticket)
    except services.TicketRuleError as exc:
        error = str(exc)
    if _is_fragment_request(request):
        context = {"ticket": ticket, "token": token, "rating_error": error}
        return render(request, "tickets/chat.html#status", context, status=400 if error else 200)
    return (
        _conversation_page(request, ticket, token, error=error, status=400)
        if error
        else redirect("chat:conversation", token=token)
    )


@require_POST
def chat_solved(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's question is solved: the conversation is resolved and the rating opens."""
    ticket, refusal = _conversation_action(request, token)
    if refusal:
        return refusal
    ticket = services.ticket_resolve_by_customer(ticket=ticket)
    if _is_fragment_request(request):
        return render(request, "tickets/chat.html#status", {"ticket": ticket, "token": token})
    return redirect("chat:conversation", token=token)


@require_POST
def chat_language(request: HttpRequest, token: str) -> HttpResponse:
    """The language switcher on the conversation page: the conversation keeps the customer's pick (its page,
    what is pushed live, its emails), and so does the language cookie for the pages that have no ticket."""
    ticket, refusal = _conversation_action(request, token)
    if refusal:
        return refusal
    form = ChatLanguageForm(request.POST)
    if not form.is_valid():
        error = " ".join(e for errors in form.errors.values() for e in errors)
        return _conversation_page(request, ticket, token, error=error, status=400)
    language = form.cleaned_data["language"]
    services.ticket_set_ui_language(ticket=ticket, language=language)
    response = redirect("chat:conversation", token=token)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response
