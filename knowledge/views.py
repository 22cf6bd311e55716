"""The public help center and the chat's article suggestions."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from knowledge import selectors, services
from knowledge.models import SuggestionImpression
from supportflow import i18n, ratelimit
from supportflow.markdown import render_article

VISITOR_COOKIE = "sf_visitor"
CLICK_SALT = "supportflow.kb.suggestion-click"
SUGGEST_PLACES = {p.value for p in SuggestionImpression.Place}


def _visitor(request: HttpRequest) -> tuple[str, bool]:
    """A random, signed visitor id (no account needed) so a vote counts once per visitor."""
    raw = request.COOKIES.get(VISITOR_COOKIE, "")
    try:
        return signing.Signer(salt="supportflow.kb.visitor").unsign(raw), False
    except signing.BadSignature:
        return secrets.token_urlsafe(16), True


def _set_visitor(response: HttpResponse, visitor: str) -> None:
    response.set_cookie(
        VISITOR_COOKIE,
        signing.Signer(salt="supportflow.kb.visitor").sign(visitor),
        max_age=365 * 86400,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


@require_GET
def help_index(request: HttpRequest) -> HttpResponse:
    query = " ".join(request.GET.get("q", "").split())[:300]
    results = []
    if query:
        hits = selectors.best_per_article(selectors.kb_search(query, k=30))[:10]
        impressions = services.suggestions_record(hits=hits, place="help_search", query=query)
        results = [(hit, _click_url(imp.pk)) for hit, imp in zip(hits, impressions, strict=True)]
    context = {"query": query, "results": results, "groups": [] if query else selectors.help_center_index()}
    return render(request, "knowledge/help_index.html", context)


@require_GET
def help_article(request: HttpRequest, slug: str) -> HttpResponse:
    article = selectors.article_get_public(slug=slug)
    services.article_record_view(article=article)
    visitor, new = _visitor(request)
    voted = article.votes.filter(visitor=visitor).values_list("helpful", flat=True).first()
    context = {"article": article, "body_html": render_article(article.body), "voted": voted}
    response = render(request, "knowledge/help_article.html", context)
    if new:
        _set_visitor(response, visitor)
    return response


@require_POST
def help_vote(request: HttpRequest, slug: str) -> HttpResponse:
    article = selectors.article_get_public(slug=slug)
    helpful = request.POST.get("helpful")
    if helpful not in {"yes", "no"}:
        return HttpResponse(_("Answer 'yes' or 'no'."), status=400)
    verdict = ratelimit.hit("kb-vote", ratelimit.request_ip(request), ratelimit.Limit(30, 60))
    if not verdict.allowed:
        text = _("Too many answers from your network; try again in %(seconds)s s.") % {"seconds": verdict.retry_after}
        return HttpResponse(text, status=429)
    visitor, new = _visitor(request)
    counted = services.article_vote(article=article, visitor=visitor, helpful=helpful == "yes")
    context = {"article": article, "voted": helpful == "yes", "already": not counted}
    response = render(request, "knowledge/help_article.html#vote", context)
    if new:
        _set_visitor(response, visitor)
    return response


def _click_url(impression_id: int) -> str:
    return reverse("help:click", args=[signing.dumps(impression_id, salt=CLICK_SALT)])


@require_GET
def help_click(request: HttpRequest, token: str) -> HttpResponse:
    """A suggestion was clicked: record it once, then go to the article."""
    try:
        impression_id = signing.loads(token, salt=CLICK_SALT, max_age=7 * 86400)
    except signing.BadSignature as exc:
        raise Http404("This link has expired.") from exc
    impression = SuggestionImpression.objects.select_related("article").filter(pk=impression_id).first()
    if impression is None or not impression.article.is_public:
        raise Http404("No such article.")
    services.suggestion_record_click(impression_id=impression.pk)
    return redirect("help:article", slug=impression.article.slug)


@require_GET
def help_suggest(request: HttpRequest) -> HttpResponse:
    """Articles matching what the customer is typing (htmx, debounced); shown ones are recorded. ``lang``:
    the language of the page asking (a conversation's may differ from the browser's)."""
    if language := i18n.supported(request.GET.get("lang")):
        translation.activate(language)
    query = " ".join((request.GET.get("q") or request.GET.get("body") or "").split())[:300]
    place = request.GET.get("place", "chat")
    if place not in SUGGEST_PLACES:
        place = "chat"
    if len(query) < 12 or len(query.split()) < 3:
        return render(request, "knowledge/suggestions.html", {"results": []})
    verdict = ratelimit.hit("kb-suggest", ratelimit.request_ip(request), ratelimit.Limit(120, 60))
    if not verdict.allowed:
        return render(request, "knowledge/suggestions.html", {"results": []})
    hits = [h for h in selectors.best_per_article(selectors.kb_search(query, k=20)) if h.vector_rank][:3]
    impressions = services.suggestions_record(hits=hits, place=place, query=query)
    results = [(hit, _click_url(imp.pk)) for hit, imp in zip(hits, impressions, strict=True)]
    return render(request, "knowledge/suggestions.html", {"results": results})
