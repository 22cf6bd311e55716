"""The authorization matrix: every HTTP route of the URL conf (admin and API router included) and every
websocket route × anonymous, customer A, customer B, agent, agent of the other department, manager,
superuser — against a world where departments restrict (``authz_world``).

Expectations are written out per route in ``ROUTES`` / ``ADMIN_MODELS`` / ``WS_ROUTES`` as one letter
per role, in the order of ``ROLES``:

- ``y``: allowed — the status is one of the route's ``ok`` statuses (200 unless said otherwise);
- ``n``: denied — 401/403/404, or a redirect to the sign-in page (or, for an admin object the user may
  not see, the admin's "does not exist" redirect to its index); never 200, never a 5xx;
- ``o``: the customer's *own* conversation — customer B holding B's token on a conversation route: it
  works, and nothing of A's shows.

On every cell, whatever the verdict, the role's ``FORBIDDEN`` words (the other customer's messages,
internal notes, e-mail address) must not appear in the response, no response may be a 5xx, and a
denied request must leave the database as it was. A route that is in the URL conf but not here fails
``test_every_route_is_classified``: a new route needs a written expectation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from asgiref.sync import async_to_sync
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.urls import reverse

from supportflow.tests.authz_world import (  # noqa: F401 — world_fixture provides `world`
    FORBIDDEN,
    ROLES,
    SECRET_B,
    STAFF,
    build_world,
    tampered,
    walk_routes,
    walk_websocket_routes,
    world_fixture,
)

PUBLIC, NOBODY = "yyyyyyy", "nnnnnnn"
STAFF_ONLY = "nnnyyyy"  # any agent or manager: lists are scoped, the leak check covers them
DEPT1 = "nnnynyy"  # an object of department 1: its agent, managers, superusers
MANAGERS = "nnnnnyy"
SUPERUSER = "nnnnnny"
TOKEN_A = "nyonnnn"  # A's conversation by its token; B holds only B's own token
TOKEN_A_CHILD = "nynnnnn"  # a child of A's conversation: B's token with A's child id is refused


@dataclass(frozen=True)
class Route:
    expect: str
    url: object  # (world, role) -> str
    method: str = "get"
    ok: tuple[int, ...] = (200,)
    data: dict | None = None


def _r(expect, url, **kwargs) -> Route:
    return Route(expect, url if callable(url) else (lambda w, role, _u=url: _u), **kwargs)


def _token(name: str, *, child: str | None = None, child_key: str = "pk"):
    def build(w, role):
        kwargs = {"token": w.token_for(role)}
        if child:
            child_obj = w.objects[child]
            kwargs[child_key] = child_obj.seq if child_key == "seq" else child_obj.pk
        return reverse(f"chat:{name}", kwargs=kwargs)

    return build


def _widget(name: str, *rest: str):
    def build(w, role):
        return reverse(f"widget:{name}", args=[w.objects["widget_site"].public_key, w.token_for(role), *rest])

    return build


def _api(name, fmt: bool = False, **lookup):
    def build(w, role):
        kwargs = {key: value(w) for key, value in lookup.items()}
        if fmt:
            kwargs["format"] = "json"
        return reverse(f"api:{name}", kwargs=kwargs)

    return build


def _email_link(name: str):
    """The pages our emails link to, by their own signed tokens: a rating link per ticket, an unsubscribe link
    per customer. Customers hold their own; everyone else a tampered copy of A's."""

    def build(w, role):
        from tickets.email import links

        ticket = {"customer_a": w.ticket_a, "customer_b": w.ticket_b}.get(role, w.ticket_a)
        token = links.csat_token(ticket) if name == "email-rate" else links.unsubscribe_token(ticket.customer)
        return reverse(name, args=[token if role in ("customer_a", "customer_b") else tampered(token)])

    return build


ROUTES: dict[str, Route] = {
    "healthz": _r(PUBLIC, "/healthz"),
    "bench/hello/": _r(PUBLIC, "/bench/hello/"),  # only with BENCH_ENDPOINTS (never in production)
    "bench/ticket-floor/": _r(PUBLIC, "/bench/ticket-floor/"),  # only with BENCH_ENDPOINTS, like bench/hello/
    "bench/api-floor/": _r(STAFF_ONLY, "/bench/api-floor/"),  # the same; the API's own permission, no data
    "readyz": _r(PUBLIC, "/readyz"),
    "metrics": _r(NOBODY, "/metrics"),  # loopback or METRICS_TOKEN only; these clients are external
    # --- the console (Django admin): sign-in for anyone, the rest for staff
    "admin/": _r(STAFF_ONLY, "/admin/", ok=(200, 302)),  # agents are sent on to their inbox
    "admin/login/": _r(PUBLIC, "/admin/login/", ok=(200, 302)),  # staff are sent on to the index
    "admin/logout/": _r(PUBLIC, "/admin/logout/", method="post", ok=(200, 302)),
    "admin/password_change/": _r(STAFF_ONLY, "/admin/password_change/"),
    "admin/password_change/done/": _r(STAFF_ONLY, "/admin/password_change/done/"),
    "admin/autocomplete/": _r(NOBODY, "/admin/autocomplete/"),  # no admin declares autocomplete_fields
    "admin/jsi18n/": _r(STAFF_ONLY, "/admin/jsi18n/"),
    # "view on site": tickets have no public URL, so it is a 404 for everyone (login for anonymous)
    "admin/r/<path:content_type_id>/<path:object_id>/": _r(
        NOBODY,
        lambda w, role: reverse(
            "admin:view_on_site",
            args=[ContentType.objects.get_for_model(w.ticket_a).pk, w.ticket_a.pk],
        ),
    ),
    "admin/^(?P<app_label>auth|django_celery_beat|supportflow|tickets|knowledge)/$": _r(STAFF_ONLY, "/admin/tickets/"),
    "admin/(?P<url>.*)$": _r(NOBODY, "/admin/no-such-page/"),
    "admin/tickets/ticket/changes/": _r(STAFF_ONLY, "/admin/tickets/ticket/changes/"),
    "admin/tickets/ticket/<int:ticket_id>/passages/": _r(
        DEPT1, lambda w, role: reverse("admin:tickets_ticket_passages", args=[w.ticket_a.pk])
    ),
    "admin/tickets/ticket/<int:ticket_id>/ai/": _r(
        DEPT1, lambda w, role: reverse("admin:tickets_ticket_ai", args=[w.ticket_a.pk])
    ),
    # a macro rendered for a ticket: the ticket's agents, managers, superusers (read-only, GET)
    "admin/tickets/ticket/<int:ticket_id>/macros/<int:macro_id>/": _r(
        DEPT1, lambda w, role: reverse("admin:tickets_ticket_macro", args=[w.ticket_a.pk, w.objects["macro_a"].pk])
    ),
    # --- the inbox: saved views (a manager's view shared with department 1) and a ticket's tags
    "admin/tickets/ticket/views/save/": _r(
        STAFF_ONLY,
        "/admin/tickets/ticket/views/save/",
        method="post",
        ok=(302,),
        data={"name": "v", "query": "view=open"},
    ),
    # department 1's agent sees the shared view but may not change it (403); managers look after shared views
    "admin/tickets/ticket/views/<int:view_id>/": _r(
        MANAGERS,
        lambda w, role: reverse("admin:tickets_ticket_view_change", args=[w.objects["shared_view"].pk]),
        method="post",
        ok=(302,),
        data={"action": "rename", "name": "Renamed"},
    ),
    "admin/tickets/ticket/<int:ticket_id>/tags/": _r(
        DEPT1, lambda w, role: reverse("admin:tickets_ticket_tags", args=[w.ticket_a.pk])
    ),
    "admin/tickets/ticket/<int:ticket_id>/merge/": _r(
        DEPT1, lambda w, role: reverse("admin:tickets_ticket_merge", args=[w.ticket_a.pk])
    ),
    "admin/tickets/ticket/export.csv": _r(MANAGERS, "/admin/tickets/ticket/export.csv"),
    # the triage model registry's one-click actions: managers only (the world's version cannot go live: a 302
    # with a message; the registry's own tests check what a promotion and a rollback change)
    "admin/tickets/triagemodel/<int:pk>/promote/": _r(
        MANAGERS,
        lambda w, role: reverse("admin:tickets_triagemodel_promote", args=[w.objects["triage_model"].pk]),
        method="post",
        ok=(302,),
    ),
    "admin/tickets/triagemodel/rollback/": _r(
        MANAGERS, "/admin/tickets/triagemodel/rollback/", method="post", ok=(302,)
    ),
    "admin/auth/user/<id>/password/": _r(
        SUPERUSER, lambda w, role: reverse("admin:auth_user_password_change", args=[w.users["agent"].pk])
    ),
    "admin/knowledge/article/upload/": _r(MANAGERS, "/admin/knowledge/article/upload/"),
    "admin/knowledge/article/upload/<int:job_id>/": _r(
        MANAGERS, lambda w, role: reverse("admin:knowledge_article_upload_status", args=[w.objects["ingest_job"].pk])
    ),
    "admin/knowledge/article/upload/<int:job_id>/progress/": _r(
        MANAGERS,
        lambda w, role: reverse("admin:knowledge_article_upload_progress", args=[w.objects["ingest_job"].pk]),
    ),
    # --- the customer's chat: the signed conversation token is the credential
    "chat/": _r(PUBLIC, "/chat/", ok=(200, 302)),  # a customer with a conversation cookie is sent back to it
    "chat/c/<str:token>/": _r(TOKEN_A, _token("conversation")),
    "chat/c/<str:token>/send/": _r(TOKEN_A, _token("send"), method="post", ok=(400,)),  # empty: refused after auth
    "chat/c/<str:token>/messages/": _r(TOKEN_A, _token("messages")),
    "chat/c/<str:token>/rate/": _r(TOKEN_A, _token("rate"), method="post", ok=(400,)),
    "chat/c/<str:token>/email/": _r(TOKEN_A, _token("email"), method="post", ok=(400,)),
    "chat/c/<str:token>/files/<int:pk>/": _r(TOKEN_A_CHILD, _token("attachment", child="attachment_a")),
    # an AI answer of A's conversation, by its number there: B's token with A's number finds nothing
    "chat/c/<str:token>/answers/<int:seq>/feedback/": _r(
        TOKEN_A_CHILD, _token("feedback", child="answer_a", child_key="seq"), method="post", ok=(400,)
    ),  # no vote given: refused after auth
    "chat/c/<str:token>/person/": _r(TOKEN_A, _token("person"), method="post", ok=(302,)),
    "chat/c/<str:token>/solved/": _r(TOKEN_A, _token("solved"), method="post", ok=(302,)),
    "chat/c/<str:token>/language/": _r(TOKEN_A, _token("language"), method="post", ok=(400,)),  # no language given
    # --- the website widget (tickets.widget): the loader, and the chat's pages framed by the site's origins
    "widget.js": _r(PUBLIC, "/widget.js", ok=(302,)),  # to the versioned static file
    "chat/widget/<str:site_key>/": _r(
        PUBLIC, lambda w, role: reverse("widget:start", args=[w.objects["widget_site"].public_key])
    ),
    "chat/widget/<str:site_key>/c/<str:token>/": _r(TOKEN_A, _widget("conversation")),
    # the token-bound POST twin of the conversation's actions: a POST without our own Origin header (which no
    # client here sends; the widget tests do) is refused before anything, whoever sends it
    "chat/widget/<str:site_key>/c/<str:token>/<path:action>": _r(NOBODY, _widget("action", "send/"), method="post"),
    # --- the language switcher of the pages without a conversation (Django's set_language; sets a cookie only)
    "i18n/setlang/": _r(PUBLIC, "/i18n/setlang/", method="post", ok=(302,)),
    # --- email channel: the provider hook needs INBOUND_EMAIL_TOKEN, which no role holds
    "inbound/email/": _r(NOBODY, "/inbound/email/", method="post"),
    "attachments/<int:pk>/": _r(DEPT1, lambda w, role: reverse("attachment", args=[w.objects["attachment_a"].pk])),
    "email/rate/<str:token>/": _r(TOKEN_A, _email_link("email-rate")),
    "email/unsubscribe/<str:token>/": _r(TOKEN_A, _email_link("email-unsubscribe")),
    # --- help center: public, published articles only
    "help/": _r(PUBLIC, "/help/"),
    "help/articles/<slug:slug>/": _r(PUBLIC, "/help/articles/reset-password/"),
    "help/articles/<slug:slug>/vote/": _r(PUBLIC, "/help/articles/reset-password/vote/", method="post", ok=(400,)),
    "help/suggest/": _r(PUBLIC, "/help/suggest/"),
    "help/go/<str:token>/": _r(
        PUBLIC, lambda w, role: reverse("help:click", args=[w.objects["click_token"]]), ok=(302,)
    ),
    # --- analytics: managers and superusers
    "analytics/": _r(MANAGERS, "/analytics/"),
    "analytics/tiles/": _r(MANAGERS, "/analytics/tiles/"),
    "analytics/agents/": _r(MANAGERS, "/analytics/agents/"),
    "analytics/ai/": _r(MANAGERS, "/analytics/ai/"),
    "analytics/savings/": _r(MANAGERS, "/analytics/savings/"),
    "analytics/knowledge-gaps/": _r(MANAGERS, "/analytics/knowledge-gaps/"),
    "analytics/knowledge-gaps/refresh/": _r(MANAGERS, "/analytics/knowledge-gaps/refresh/", method="post", ok=(302,)),
    "analytics/knowledge-gaps/<int:pk>/draft/": _r(
        MANAGERS, lambda w, role: reverse("analytics:gap-draft", args=[w.objects["gap"].pk]), method="post", ok=(302,)
    ),
    "analytics/definitions/": _r(MANAGERS, "/analytics/definitions/"),
    # a draft experiment cannot be promoted: a manager gets the 400 that says so, nothing changes
    "analytics/ai/experiments/<int:pk>/promote/": _r(
        MANAGERS,
        lambda w, role: reverse("analytics:experiment-promote", args=[w.objects["ai_experiment"].pk]),
        method="post",
        ok=(400,),
        data={"arm": "B"},
    ),
    "analytics/export/<slug:name>.csv": _r(MANAGERS, "/analytics/export/totals.csv"),
    "analytics/alerts/banner/": _r(STAFF_ONLY, "/analytics/alerts/banner/"),
    "analytics/alerts/dismiss/": _r(STAFF_ONLY, "/analytics/alerts/dismiss/", method="post", ok=(302,)),
    # --- REST API: staff (session here; keys in test_api.py), objects scoped like the console
    "api/v1/kb/search/": _r(STAFF_ONLY, "/api/v1/kb/search/", ok=(400,)),  # no query: refused after auth
    "api/v1/analytics/summary/": _r(MANAGERS, "/api/v1/analytics/summary/"),
    "api/v1/schema/": _r(PUBLIC, "/api/v1/schema/"),  # the published contract, no data
    "api/v1/docs/": _r(PUBLIC, "/api/v1/docs/"),
    "api/v1/^tickets/$": _r(STAFF_ONLY, _api("ticket-list")),
    "api/v1/^tickets\\.(?P<format>[a-z0-9]+)/?$": _r(STAFF_ONLY, _api("ticket-list", fmt=True)),
    "api/v1/^tickets/(?P<reference>[^/]+)/$": _r(
        DEPT1, _api("ticket-detail", reference=lambda w: w.ticket_a.reference)
    ),
    "api/v1/^tickets/(?P<reference>[^/]+)\\.(?P<format>[a-z0-9]+)/?$": _r(
        DEPT1, _api("ticket-detail", fmt=True, reference=lambda w: w.ticket_a.reference)
    ),
    "api/v1/^tickets/(?P<reference>[^/]+)/messages/$": _r(
        DEPT1, _api("ticket-messages", reference=lambda w: w.ticket_a.reference)
    ),
    "api/v1/^tickets/(?P<reference>[^/]+)/messages\\.(?P<format>[a-z0-9]+)/?$": _r(
        DEPT1, _api("ticket-messages", fmt=True, reference=lambda w: w.ticket_a.reference)
    ),
    "api/v1/^tickets/(?P<reference>[^/]+)/csat/$": _r(
        DEPT1, _api("ticket-csat", reference=lambda w: w.ticket_a.reference)
    ),
    "api/v1/^tickets/(?P<reference>[^/]+)/csat\\.(?P<format>[a-z0-9]+)/?$": _r(
        DEPT1, _api("ticket-csat", fmt=True, reference=lambda w: w.ticket_a.reference)
    ),
    "api/v1/^customers/$": _r(STAFF_ONLY, _api("customer-list")),
    "api/v1/^customers\\.(?P<format>[a-z0-9]+)/?$": _r(STAFF_ONLY, _api("customer-list", fmt=True)),
    "api/v1/^customers/(?P<pk>[^/.]+)/$": _r(DEPT1, _api("customer-detail", pk=lambda w: w.ticket_a.customer_id)),
    "api/v1/^customers/(?P<pk>[^/.]+)\\.(?P<format>[a-z0-9]+)/?$": _r(
        DEPT1, _api("customer-detail", fmt=True, pk=lambda w: w.ticket_a.customer_id)
    ),
    "api/v1/^kb/articles/$": _r(STAFF_ONLY, _api("article-list")),
    "api/v1/^kb/articles\\.(?P<format>[a-z0-9]+)/?$": _r(STAFF_ONLY, _api("article-list", fmt=True)),
    "api/v1/^kb/articles/(?P<slug>[^/.]+)/$": _r(STAFF_ONLY, _api("article-detail", slug=lambda w: "reset-password")),
    "api/v1/^kb/articles/(?P<slug>[^/.]+)\\.(?P<format>[a-z0-9]+)/?$": _r(
        STAFF_ONLY, _api("article-detail", fmt=True, slug=lambda w: "reset-password")
    ),
    "api/v1/": _r(STAFF_ONLY, "/api/v1/"),
    "api/v1/<drf_format_suffix:format>": _r(STAFF_ONLY, "/api/v1/.json"),
    "api/v1/^[\\s\\S]*$": _r(NOBODY, "/api/v1/no-such-endpoint/"),
    # --- integrations: verified by signature; Slack and Discord are off in tests (404)
    "integrations/slack/events/": _r(NOBODY, "/integrations/slack/events/", method="post"),
    "integrations/discord/interactions/": _r(NOBODY, "/integrations/discord/interactions/", method="post"),
}

CONDITIONAL_ROUTES = {
    "bench/hello/",
    "bench/ticket-floor/",
    "bench/api-floor/",
}  # in the URL conf only when BENCH_ENDPOINTS is on

# Admin model pages, per model: the object addressed, then changelist, add, change, history, delete.
# The generic "<object_id>/" route only redirects to the change page (no data): staff get the redirect.
ADMIN_MODELS: dict[str, tuple] = {
    "auth/group": (lambda w: w.objects["group"], SUPERUSER, SUPERUSER, SUPERUSER, SUPERUSER, SUPERUSER),
    "auth/user": (lambda w: w.users["agent"], SUPERUSER, SUPERUSER, SUPERUSER, SUPERUSER, SUPERUSER),
    "django_celery_beat/periodictask": (lambda w: w.objects["periodic_task"], *[SUPERUSER] * 5),
    "django_celery_beat/clockedschedule": (lambda w: w.objects["clocked"], *[SUPERUSER] * 5),
    "django_celery_beat/crontabschedule": (lambda w: w.objects["crontab"], *[SUPERUSER] * 5),
    "django_celery_beat/solarschedule": (lambda w: w.objects["solar"], *[SUPERUSER] * 5),
    "django_celery_beat/intervalschedule": (lambda w: w.objects["interval"], *[SUPERUSER] * 5),
    "supportflow/webhooksubscription": (lambda w: w.objects["subscription"], *[MANAGERS] * 5),
    # deliveries are written by the system (no add) and only a superuser deletes their log
    "supportflow/webhookdelivery": (lambda w: w.objects["delivery"], MANAGERS, NOBODY, MANAGERS, MANAGERS, SUPERUSER),
    # a manager's own key; keys are revoked, never deleted
    "supportflow/apikey": (lambda w: w.objects["manager_key"], MANAGERS, MANAGERS, MANAGERS, MANAGERS, NOBODY),
    # any agent opens a ticket for a customer (in their own queues: test_console_workflows); only a superuser deletes
    "tickets/ticket": (lambda w: w.ticket_a, STAFF_ONLY, STAFF_ONLY, DEPT1, DEPT1, SUPERUSER),
    "tickets/customer": (lambda w: w.ticket_a.customer, STAFF_ONLY, SUPERUSER, DEPT1, DEPT1, SUPERUSER),
    "tickets/slapolicy": (lambda w: w.dept1.sla_policy, STAFF_ONLY, MANAGERS, STAFF_ONLY, STAFF_ONLY, SUPERUSER),
    "tickets/department": (lambda w: w.dept1, STAFF_ONLY, MANAGERS, STAFF_ONLY, STAFF_ONLY, SUPERUSER),
    "tickets/airun": (lambda w: w.objects["airun_a"], STAFF_ONLY, NOBODY, DEPT1, DEPT1, NOBODY),
    "tickets/aidraft": (lambda w: w.objects["draft_a"], STAFF_ONLY, NOBODY, DEPT1, DEPT1, NOBODY),
    "tickets/escalationrule": (
        lambda w: w.objects["escalation_rule"],
        STAFF_ONLY,
        MANAGERS,
        STAFF_ONLY,
        STAFF_ONLY,
        MANAGERS,
    ),
    "tickets/triagemodel": (lambda w: w.objects["triage_model"], STAFF_ONLY, NOBODY, STAFF_ONLY, STAFF_ONLY, NOBODY),
    # agents add their own macros and read department 1's shared one; managers change and delete shared ones
    "tickets/macro": (lambda w: w.objects["macro_a"], STAFF_ONLY, STAFF_ONLY, DEPT1, DEPT1, MANAGERS),
    # agents see the tags (and tag tickets on the ticket page); managers rename, recolour and delete them
    "tickets/tag": (lambda w: w.objects["tag"], STAFF_ONLY, MANAGERS, STAFF_ONLY, STAFF_ONLY, MANAGERS),
    # the AI's configuration versions and experiments: managers create and read them, nobody edits or deletes
    "tickets/aiconfigversion": (lambda w: w.objects["ai_version"], *[MANAGERS] * 4, NOBODY),
    "tickets/aiexperiment": (lambda w: w.objects["ai_experiment"], *[MANAGERS] * 4, NOBODY),
    # the website widget's sites: which origins may frame the chat; managers and superusers only
    "tickets/widgetsite": (lambda w: w.objects["widget_site"], *[MANAGERS] * 5),
    "knowledge/category": (lambda w: w.objects["category"], STAFF_ONLY, MANAGERS, STAFF_ONLY, STAFF_ONLY, SUPERUSER),
    "knowledge/article": (lambda w: w.objects["article"], STAFF_ONLY, MANAGERS, STAFF_ONLY, STAFF_ONLY, MANAGERS),
}
ADMIN_VIEWS = ("changelist", "add", "change", "history", "delete")


def _admin_routes() -> dict[str, Route]:
    routes = {}
    for model, (target, *expects) in ADMIN_MODELS.items():
        base = f"admin/{model}/"
        for view, expect in zip(ADMIN_VIEWS, expects, strict=True):
            suffix = {"changelist": "", "add": "add/"}.get(view, f"<path:object_id>/{view}/")

            def url(w, role, _model=model, _view=view, _target=target):
                name = f"admin:{_model.replace('/', '_')}_{_view}"
                return reverse(name) if _view in ("changelist", "add") else reverse(name, args=[_target(w).pk])

            routes[base + suffix] = Route(expect, url)
        routes[base + "<path:object_id>/"] = Route(
            STAFF_ONLY, lambda w, role, _model=model, _target=target: f"/admin/{_model}/{_target(w).pk}/", ok=(302,)
        )
    return routes


ROUTES.update(_admin_routes())
# The bare ticket list sends staff on to their inbox (Mine or Unassigned): the list itself is checked with
# every ticket a role may see (view=all), so the leak check reads all of it.
ROUTES["admin/tickets/ticket/"] = _r(STAFF_ONLY, "/admin/tickets/ticket/?view=all")

# Websocket routes: who may connect (and then read the thread).
WS_ROUTES = {
    "ws/agent/presence/tickets/<int:ticket_id>/": DEPT1,  # who else views the ticket, who is typing
    "ws/agent/presence/": STAFF_ONLY,  # the list's presence: only rows the agent may see are watched
    "ws/chat/<str:token>/": TOKEN_A,
    "ws/agent/tickets/<int:ticket_id>/": DEPT1,
    "ws/bench/echo/<str:room>/": PUBLIC,  # only with BENCH_ENDPOINTS (never in production): a bare echo
    "ws/bench/store-echo/<str:room>/": PUBLIC,  # the same, storing each message first
    "": NOBODY,  # last, any other path (tried as "/"): refused at the handshake, never a 500
}

SUMMARY = {
    "routes": 0,
    "websocket_routes": 0,
    "cells": 0,
    "allowed": 0,
    "denied": 0,
    "own": 0,
    "websocket_cells": 0,
    "websocket_allowed": 0,
    "websocket_denied": 0,
    "nested_swaps": 0,
}
HTTP_ROUTES = sorted({pattern for pattern, _ in walk_routes()})
WEBSOCKET_ROUTES = walk_websocket_routes()


def _admin_path(path: str) -> bool:
    return path in ("/admin/login/", "/admin/")


def _fingerprint() -> tuple:
    """What a denied request must not change, in one query: row counts and a digest of the mutable
    columns of tickets, drafts, gaps and API keys."""
    from analytics.models import KnowledgeGap
    from knowledge.models import Article, ArticleVote
    from supportflow.models import APIKey
    from tickets.models import AIConfigVersion, AIDraft, AIExperiment, Customer, Message, Ticket, TicketEvent

    def count(model) -> str:
        return f"(SELECT count(*) FROM {model._meta.db_table})"  # noqa: S608 — our own table names

    def digest(model, columns: str) -> str:
        aggregate = f"md5(string_agg(concat_ws(',', {columns}), ';' ORDER BY id))"
        return f"(SELECT {aggregate} FROM {model._meta.db_table})"  # noqa: S608 — our own table names

    sql = "SELECT " + ", ".join(
        [
            count(Message),
            count(TicketEvent),
            count(Article),
            count(ArticleVote),
            digest(Ticket, "id, status, assignee_id, department_id, csat_score, priority, escalated"),
            digest(Customer, "id, name, email"),
            digest(AIDraft, "id, status"),
            digest(KnowledgeGap, "id, article_id"),
            digest(APIKey, "id, revoked_at"),
            digest(AIConfigVersion, "id, status"),
            digest(AIExperiment, "id, status, winner_id"),
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()


@pytest.fixture(scope="module", autouse=True)
def _summary(tmp_path_factory):
    yield
    SUMMARY["routes"] = len(HTTP_ROUTES)
    SUMMARY["websocket_routes"] = len(WEBSOCKET_ROUTES)
    path = tmp_path_factory.getbasetemp() / "authz-summary.json"
    path.write_text(json.dumps(SUMMARY, indent=2))
    print(f"\nauthorization matrix: {json.dumps(SUMMARY)} (written to {path})")


@pytest.fixture
def quiet_side_effects(monkeypatch):
    """Allowed cells may enqueue work or search by meaning; neither is what this test is about."""
    import analytics.tasks
    import knowledge.selectors

    monkeypatch.setattr(analytics.tasks.refresh_knowledge_gaps, "delay", lambda *a, **k: None)
    monkeypatch.setattr(knowledge.selectors, "kb_search", lambda *a, **k: [])


def test_every_route_is_classified():
    unclassified = sorted(set(HTTP_ROUTES) - set(ROUTES))
    stale = sorted(set(ROUTES) - set(HTTP_ROUTES) - CONDITIONAL_ROUTES)
    assert unclassified == [], "routes without an expectation in ROUTES/ADMIN_MODELS"
    assert stale == [], "expectations for routes that no longer exist"
    assert set(WEBSOCKET_ROUTES) <= set(WS_ROUTES), "websocket routes without an expectation in WS_ROUTES"
    assert all(len(r.expect) == len(ROLES) and set(r.expect) <= set("yno") for r in ROUTES.values())


def _body(response) -> bytes:
    if getattr(response, "streaming", False):
        if response.is_async:  # the ticket export: an async iterator, as the ASGI server reads it

            async def chunks() -> list[bytes]:
                return [chunk async for chunk in response.streaming_content]

            return b"".join(async_to_sync(chunks)())
        return b"".join(response.streaming_content)
    return response.content


def _check_cell(world, pattern: str, route: Route, role: str, expect: str) -> str:
    url = route.url(world, role)
    client = world.client(role)
    before = _fingerprint() if expect == "n" else None
    response = getattr(client, route.method)(url, route.data or {})
    status = response.status_code
    where = f"{route.method.upper()} {url} as {role} (route {pattern!r}) → {status}"
    assert status < 500, where
    body = _body(response)
    for word in FORBIDDEN[role]:
        assert word.encode() not in body, f"{where}: shows {word!r}"
    location = urlsplit(response.get("Location", "")).path
    if expect == "n":
        denied = status in (401, 403, 404) or (status == 302 and _admin_path(location))
        assert denied, f"{where}: expected a refusal (401/403/404 or the sign-in page)"
        assert _fingerprint() == before, f"{where}: a refused request changed the database"
        return "denied"
    assert status in route.ok, f"{where}: expected one of {route.ok}"
    if status == 302:
        assert location != "/admin/login/", f"{where}: sent to sign in"
    return "own" if expect == "o" else "allowed"


# --- nested objects swapped: a good parent with a foreign child is a 404 and changes nothing


def _swap_customer_b_token_a_attachment(w):
    url = reverse("chat:attachment", args=[w.token_b, w.objects["attachment_a"].pk])
    return w.client("customer_b").get(url)


def _swap_customer_a_internal_attachment(w):
    url = reverse("chat:attachment", args=[w.token_a, w.objects["attachment_a_internal"].pk])
    return w.client("customer_a").get(url)


def _swap_agent_ai_panel_foreign_draft(w):
    url = reverse("admin:tickets_ticket_ai", args=[w.ticket_a.pk])
    return w.client("agent").post(url, {"draft": w.objects["draft_b"].pk, "action": "discard"})


def _swap_agent_reply_with_foreign_draft(w):
    url = reverse("admin:tickets_ticket_change", args=[w.ticket_a.pk])
    return w.client("agent").post(url, {"_reply": "1", "body": "Hello", "draft": w.objects["draft_b"].pk})


def _swap_agent_other_reply_on_foreign_ticket(w):
    url = reverse("admin:tickets_ticket_change", args=[w.ticket_a.pk])
    return w.client("agent_other").post(url, {"_reply": "1", "body": "Hello"})


def _swap_agent_other_resolves_foreign_ticket(w):
    url = reverse("admin:tickets_ticket_change", args=[w.ticket_a.pk])
    return w.client("agent_other").post(url, {"_ticket_action": "resolve"})


def _swap_agent_other_api_message_on_foreign_ticket(w):
    url = reverse("api:ticket-messages", args=[w.ticket_a.reference])
    return w.client("agent_other").post(url, {"body": "Hello", "internal": False}, content_type="application/json")


def _swap_agent_other_api_patch_foreign_ticket(w):
    url = reverse("api:ticket-detail", args=[w.ticket_a.reference])
    return w.client("agent_other").patch(url, {"status": "resolved"}, content_type="application/json")


def _swap_agent_other_staff_attachment(w):
    return w.client("agent_other").get(reverse("attachment", args=[w.objects["attachment_a"].pk]))


def _swap_manager_revokes_admins_key(w):
    url = reverse("admin:supportflow_apikey_changelist")
    data = {"action": "revoke", "_selected_action": [w.objects["admin_key"].pk]}
    return w.client("manager").post(url, data)


def _swap_manager_opens_admins_key(w):
    return w.client("manager").get(reverse("admin:supportflow_apikey_change", args=[w.objects["admin_key"].pk]))


def _swap_agent_other_ai_panel_own_draft_foreign_ticket(w):
    url = reverse("admin:tickets_ticket_ai", args=[w.ticket_a.pk])
    return w.client("agent_other").post(url, {"draft": w.objects["draft_b"].pk, "action": "use"})


# name: (the attempt, the refusal it must get: a status, or a status and the redirect's path)
NESTED_SWAPS = {
    "customer B's token + A's attachment": (_swap_customer_b_token_a_attachment, 404),
    "customer A's token + A's internal-note attachment": (_swap_customer_a_internal_attachment, 404),
    "agent: A's AI panel + B's draft (discard)": (_swap_agent_ai_panel_foreign_draft, 404),
    "agent: reply on A using B's draft": (_swap_agent_reply_with_foreign_draft, 404),
    "other agent: reply on A": (_swap_agent_other_reply_on_foreign_ticket, 404),
    "other agent: resolve A": (_swap_agent_other_resolves_foreign_ticket, 404),
    "other agent: A's AI panel + own department's draft (use)": (
        _swap_agent_other_ai_panel_own_draft_foreign_ticket,
        404,
    ),
    "other agent: API message on A": (_swap_agent_other_api_message_on_foreign_ticket, 404),
    "other agent: API PATCH A": (_swap_agent_other_api_patch_foreign_ticket, 404),
    "other agent: A's attachment": (_swap_agent_other_staff_attachment, 404),
    # the admin drops ids outside the queryset and says "no items selected"
    "manager: revoke the superuser's API key": (
        _swap_manager_revokes_admins_key,
        (302, "/admin/supportflow/apikey/"),
    ),
    "manager: open the superuser's API key": (_swap_manager_opens_admins_key, (302, "/admin/")),
}


# --- websockets: the real ASGI application, origin check and session auth included


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
@pytest.mark.parametrize("pattern", WEBSOCKET_ROUTES)
def test_websocket_route_by_role(pattern, tmp_path, settings):
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator

    from supportflow.asgi import application

    settings.EMAIL_PRIVATE_ROOT = tmp_path
    expect = WS_ROUTES.get(pattern)
    assert expect is not None, f"websocket route {pattern!r} has no expectation in WS_ROUTES"
    w = build_world()

    def path_for(role: str) -> str:
        if pattern.startswith("ws/agent/presence/"):
            return "/" + pattern.replace("<int:ticket_id>", str(w.ticket_a.pk))
        if pattern.startswith("ws/chat/"):
            return f"/ws/chat/{w.token_for(role)}/"
        if pattern.startswith("ws/agent/tickets/"):
            return f"/ws/agent/tickets/{w.ticket_a.pk}/"
        return "/" + pattern.replace("<str:room>", "room")

    def headers_for(role: str) -> list:
        headers = [(b"origin", b"http://localhost")]
        if role in STAFF:
            headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={w.sessions[role]}".encode()))
        return headers

    async def attempt(path: str, headers: list) -> tuple[bool, str]:
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect(timeout=10)
        text = ""
        if connected and not pattern.startswith("ws/bench/"):
            if pattern == "ws/agent/presence/":
                await communicator.send_json_to({"type": "watch", "tickets": [w.ticket_a.pk, w.ticket_b.pk]})
            else:
                await communicator.send_json_to({"type": "resync", "after": 0})
            text = await communicator.receive_from(timeout=10)
        await communicator.disconnect()
        return connected, text

    for role, want in zip(ROLES, expect, strict=True):
        connected, text = async_to_sync(attempt)(path_for(role), headers_for(role))
        assert connected == (want in "yo"), f"{pattern} as {role}: connected={connected}, expected {want}"
        for word in FORBIDDEN[role]:
            assert word not in text, f"{pattern} as {role}: the thread shows {word!r}"
        if want == "o":
            assert SECRET_B in text, f"{pattern} as {role}: B's own thread should load"
        SUMMARY["websocket_cells"] += 1
        SUMMARY["websocket_allowed" if connected else "websocket_denied"] += 1

    if "y" in expect and expect != PUBLIC:  # cross-site websocket hijacking: the allowed role's cookie, a foreign page
        role = ROLES[expect.index("y")]
        headers = [(b"origin", b"https://evil.example"), *headers_for(role)[1:]]
        connected, _ = async_to_sync(attempt)(path_for(role), headers)
        assert not connected, f"{pattern} as {role} from a foreign origin: connected"
        SUMMARY["websocket_cells"] += 1
        SUMMARY["websocket_denied"] += 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path", ["/ws/chat//", "/ws/agent/tickets/abc/", "/ws/agent/tickets/1/extra/", "/ws/nope/", "/"]
)
def test_websocket_on_an_unknown_path_is_refused(path):
    """No route matches: the handshake is refused (403), where the router used to raise (a 500)."""
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator

    from supportflow.asgi import application

    async def attempt() -> tuple[bool, object]:
        communicator = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://localhost")])
        connected, code = await communicator.connect(timeout=10)
        await communicator.wait(timeout=1)
        return connected, code

    connected, code = async_to_sync(attempt)()
    assert not connected
    assert code in (None, 1000), code


@pytest.mark.django_db
class TestHttpMatrix:
    @pytest.mark.usefixtures("quiet_side_effects")
    @pytest.mark.parametrize("pattern", HTTP_ROUTES)
    def test_route_by_role(self, world, pattern):
        route = ROUTES.get(pattern)
        assert route is not None, f"route {pattern!r} has no expectation: add it to ROUTES or ADMIN_MODELS"
        for role, expect in zip(ROLES, route.expect, strict=True):
            with transaction.atomic():
                verdict = _check_cell(world, pattern, route, role, expect)
                transaction.set_rollback(True)  # each cell sees the world as built
            SUMMARY["cells"] += 1
            SUMMARY[verdict] += 1

    @pytest.mark.parametrize("name", list(NESTED_SWAPS))
    def test_nested_swap_is_refused_and_changes_nothing(self, world, name):
        attempt, refusal = NESTED_SWAPS[name]
        before = _fingerprint()
        response = attempt(world)
        got = response.status_code
        if isinstance(refusal, tuple):
            got = (got, urlsplit(response.get("Location", "")).path)
        assert got == refusal, name
        assert _fingerprint() == before, f"{name}: the database changed"
        SUMMARY["nested_swaps"] += 1
