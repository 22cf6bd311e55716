"""The widget's HTTP side: the loader script's stable URL, and the chat's pages in the site's iframe.

Framing: these pages alone answer with ``frame-ancestors`` set to the site's origins (and no
X-Frame-Options); every other page keeps ``'none'`` / ``DENY``.

CSRF without cookies: in a third-party iframe our cookies (the CSRF cookie, the chat cookie) are not sent,
so Django's CSRF check cannot pass there. The widget's POSTs are ``csrf_exempt`` and checked instead by
``_from_our_page``: the browser-set ``Origin`` must be our own origin (and ``Sec-Fetch-Site`` same-origin),
which only a page we serve — the framed widget page — can produce; no script on the site or elsewhere can
forge it. CSRF is a forged request riding ambient credentials; these routes take none: their only credential
is the signed conversation token in the path (or, to start, nothing but the public site key), which a
forging page does not have. So nothing is lost by not reading a cookie, and a foreign page cannot post.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import Resolver404, resolve, reverse
from django.utils import translation
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from supportflow import i18n, ratelimit
from tickets import languages, selectors, services, views
from tickets.models import WidgetSite
from tickets.widget import selectors as widget_selectors
from tickets.widget import services as widget_services
from tickets.widget.forms import WidgetStartForm

logger = logging.getLogger(__name__)

SCRIPT = "supportflow/widget.js"
SCRIPT_CACHE_SECONDS = 600  # the stable URL; the versioned file it points to is cached for a year
# The conversation's POST routes the widget may use through its token-bound twin (``widget_action``).
ACTIONS = frozenset({"send", "rate", "email", "feedback", "person", "solved"})


@require_GET
def widget_script(request: HttpRequest) -> HttpResponse:
    """``/widget.js``, the URL in the snippet: a short-cached redirect to the versioned static file (a hashed
    name with a long cache in production, ``STATIC_MANIFEST``). A script tag needs no CORS."""
    response = HttpResponseRedirect(static(SCRIPT))
    patch_cache_control(response, public=True, max_age=SCRIPT_CACHE_SECONDS)
    return response


def _from_our_page(request: HttpRequest) -> bool:
    """Sent by a page of our own origin (the framed widget page): see the module docstring."""
    origin = request.headers.get("Origin", "")
    fetch_site = request.headers.get("Sec-Fetch-Site", "same-origin")
    return origin == f"{request.scheme}://{request.get_host()}" and fetch_site == "same-origin"


def _refuse_foreign(request: HttpRequest) -> HttpResponse:
    logger.warning("widget POST refused: origin %r is not ours", request.headers.get("Origin", ""))
    text = _("This request must come from the chat widget itself; reload the page and try again.")
    return HttpResponse(text, status=403, content_type="text/plain; charset=utf-8")


def _framed(response: HttpResponse, site: WidgetSite | None) -> HttpResponse:
    response["Content-Security-Policy"] = widget_selectors.widget_frame_policy(site=site)
    return response


def _speak(request: HttpRequest) -> tuple[str, bool]:
    """The widget's ``?lang=`` (the site's ``data-language``) if it is one of ours, else the chat's rule."""
    language = i18n.supported(request.GET.get("lang", ""))
    if not language:
        return languages.start_language(request)
    translation.activate(language)
    request.LANGUAGE_CODE = language
    return language, True


def _frame_context(site: WidgetSite, kind: str, *, token: str = "", notice: str = "", forget: bool = False) -> dict:
    prefix = reverse("widget:start", args=[site.public_key])
    return {
        "site": site.public_key,
        "origins": json.dumps(site.allowed_origins),
        "kind": kind,
        "token": token,
        "start_url": prefix,
        "action_prefix": f"{prefix}c/",
        "send_url": reverse("widget:action", args=[site.public_key, token, "send/"]) if token else "",
        "notice": notice,
        "forget": forget,
    }


def _start_page(request, site, form, *, status=200, notice="", forget=False, identity_error="") -> HttpResponse:
    context = {
        "form": form,
        "resume_url": "",
        "widget": _frame_context(site, "start", notice=notice, forget=forget),
        "identity_error": identity_error,
    }
    return _framed(render(request, "tickets/chat_start.html", context, status=status), site)


def _unavailable(request: HttpRequest, exc: widget_selectors.WidgetUnavailable) -> HttpResponse:
    return _framed(HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8"), None)


@csrf_exempt  # token-bound instead: _from_our_page (module docstring)
@xframe_options_exempt  # frame-ancestors says who may frame it
@require_http_methods(["GET", "POST"])
def widget_start(request: HttpRequest, site_key: str) -> HttpResponse:
    """The widget's first page: the chat's start form, compact; the visitor's identity (if the site passed
    one) arrives in hidden fields and is checked against the site's identity secret."""
    try:
        site = widget_selectors.widget_site_get(public_key=site_key)
    except widget_selectors.WidgetUnavailable as exc:
        return _unavailable(request, exc)
    ui_language, chosen = _speak(request)
    if request.method == "GET":
        return _start_page(request, site, WidgetStartForm())
    if not _from_our_page(request):
        return _refuse_foreign(request)
    form = WidgetStartForm(request.POST)
    if not form.is_valid():
        return _start_page(request, site, form, status=400)
    verdict, _refused = ratelimit.hit_all(
        [
            ("chat-start", ratelimit.request_ip(request), ratelimit.parse(settings.CHAT_RATE_START_PER_IP)),
            ("widget-start", str(site.pk), ratelimit.parse(settings.WIDGET_RATE_START_PER_SITE)),
        ]
    )
    if not verdict.allowed:
        form.add_error(
            None,
            _("Too many new conversations from your network. Try again in %(seconds)s s.")
            % {"seconds": verdict.retry_after},
        )
        return _start_page(request, site, form, status=429)
    try:
        visitor = widget_selectors.widget_visitor_verify(site=site, **form.identity())
    except widget_selectors.IdentityRefused:
        message = _(
            "This website's sign-in could not be verified, so this conversation cannot be linked to your "
            "account. You can continue as a guest."
        )
        # Only the question is kept: the refused identity's name and email are not carried over to the guest.
        guest = WidgetStartForm(initial={"body": form.cleaned_data["body"]})
        return _start_page(request, site, guest, status=403, identity_error=message)
    try:
        ticket = widget_services.widget_conversation_start(
            site=site,
            visitor=visitor,
            name=form.cleaned_data["name"],
            email=form.cleaned_data["email"],
            body=form.cleaned_data["body"],
            ui_language=ui_language,
            ui_language_chosen=chosen,
        )
    except services.TicketRuleError as exc:
        form.add_error("body", str(exc))
        return _start_page(request, site, form, status=400)
    token = selectors.ticket_customer_token(ticket=ticket)
    return redirect("widget:conversation", site_key=site.public_key, token=token)


@xframe_options_exempt
@require_GET
def widget_conversation(request: HttpRequest, site_key: str, token: str) -> HttpResponse:
    """The conversation in the widget: the chat page, compact, live over the same websocket. A link that
    no longer opens one of this site's conversations shows the start form and tells the site to forget it."""
    try:
        site = widget_selectors.widget_site_get(public_key=site_key)
    except widget_selectors.WidgetUnavailable as exc:
        return _unavailable(request, exc)
    try:
        ticket = widget_selectors.widget_conversation_get(site=site, token=token)
    except Http404:
        _speak(request)
        notice = _("That conversation is no longer available. Start a new one below.")
        return _start_page(request, site, WidgetStartForm(), status=404, notice=notice, forget=True)
    languages.activate_for_request(request, ticket)
    if getattr(ticket, "followed_from", ""):  # merged into another ticket: its own link from now on
        return redirect("widget:conversation", site_key=site_key, token=selectors.ticket_customer_token(ticket=ticket))
    widget = _frame_context(site, "conversation", token=token)
    return _framed(views._conversation_page(request, ticket, token, widget=widget), site)


@csrf_exempt  # token-bound instead: _from_our_page (module docstring)
@require_POST
def widget_action(request: HttpRequest, site_key: str, token: str, action: str) -> HttpResponse:
    """The widget's twin of the conversation's POST routes (``/chat/c/<token>/<action>``): the same view,
    reached without a CSRF cookie, from our own page only, for this site's conversations only."""
    if not _from_our_page(request):
        return _refuse_foreign(request)
    try:
        site = widget_selectors.widget_site_get(public_key=site_key)
    except widget_selectors.WidgetUnavailable as exc:
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain; charset=utf-8")
    widget_selectors.widget_conversation_get(site=site, token=token)
    try:
        match = resolve(reverse("chat:conversation", args=[token]) + action)
    except Resolver404 as exc:
        raise Http404("No such action.") from exc
    if match.namespace != "chat" or match.url_name not in ACTIONS:
        raise Http404("No such action.")
    return match.func(request, *match.args, **match.kwargs)
