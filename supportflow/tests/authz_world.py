"""The fixture world and the route walker shared by the authorization matrix and the CSRF/CSP tests.

Two departments that restrict (``FEATURE_AGENTS_SEE_ALL_DEPARTMENTS`` off): customer A's ticket in
department 1, customer B's in department 2, an agent of each, a manager, a superuser, and one object
of every kind a route can address (attachment, AI draft and run, KB articles, API key, webhook, …).
Customers hold no account: the app knows them by the signed conversation token in the URL and the
``sf_chat`` cookie, so a customer's "login" is that cookie and those URLs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

ROLES = ("anonymous", "customer_a", "customer_b", "agent", "agent_other", "manager", "admin")
CUSTOMERS = ("customer_a", "customer_b")
STAFF = ("agent", "agent_other", "manager", "admin")
EXTERNAL_ADDR = "203.0.113.7"  # clients come from outside: loopback-only routes must not open for them

SECRET_A = "zq-secret-alpha"  # customer A's public words: only A (by token) and A's staff may read them
INTERNAL_A = "zq-internal-alpha"  # an internal note on A's ticket: never for any customer
EMAIL_A = "zq-customer-alpha@example.com"
SECRET_B = "zq-secret-bravo"
INTERNAL_B = "zq-internal-bravo"
EMAIL_B = "zq-customer-bravo@example.com"

# What each role must never be shown, on any route (customers never see internal notes; departments
# restrict, so each agent is blind to the other department's customer).
FORBIDDEN = {
    "anonymous": (SECRET_A, INTERNAL_A, EMAIL_A, SECRET_B, INTERNAL_B, EMAIL_B),
    "customer_a": (INTERNAL_A, SECRET_B, INTERNAL_B, EMAIL_B),
    "customer_b": (SECRET_A, INTERNAL_A, EMAIL_A, INTERNAL_B),
    "agent": (SECRET_B, INTERNAL_B, EMAIL_B),
    "agent_other": (SECRET_A, INTERNAL_A, EMAIL_A),
    "manager": (),
    "admin": (),
}


def tampered(token: str) -> str:
    """A conversation token whose signature no longer matches: what a guesser holds."""
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@dataclass
class World:
    dept1: object
    dept2: object
    users: dict
    ticket_a: object
    ticket_b: object
    token_a: str
    token_b: str
    objects: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)

    def token_for(self, role: str) -> str:
        """The conversation token a role holds: its own, or a tampered copy of A's."""
        return {"customer_a": self.token_a, "customer_b": self.token_b}.get(role, tampered(self.token_a))

    def client(self, role: str, **kwargs) -> Client:
        client = Client(REMOTE_ADDR=EXTERNAL_ADDR, **kwargs)
        if role == "customer_a":
            client.cookies[settings.CHAT_COOKIE_NAME] = self.token_a
        elif role == "customer_b":
            client.cookies[settings.CHAT_COOKIE_NAME] = self.token_b
        elif role in STAFF:
            client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[role]
        return client


def build_world() -> World:
    """Every object a route can address (attachments go to ``EMAIL_PRIVATE_ROOT``, set by the caller)."""
    from django.contrib.auth.models import Group
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    from analytics.models import KnowledgeGap
    from knowledge.models import Article, Category, IngestJob, SuggestionImpression
    from supportflow.api.keys import api_key_create
    from supportflow.models import WebhookDelivery, WebhookSubscription
    from tickets import selectors, services
    from tickets.email import storage
    from tickets.models import (
        AIDraft,
        AIRun,
        Attachment,
        Customer,
        EscalationRule,
        Macro,
        Message,
        SavedView,
        Tag,
        TriageModel,
    )
    from tickets.services.tags import tag_save
    from tickets.tests.factories import DepartmentFactory, make_agent, make_manager, make_ticket

    dept1, dept2 = DepartmentFactory(name="Dept One"), DepartmentFactory(name="Dept Two")
    users = {
        "agent": make_agent(dept1, username="agent-one"),
        "agent_other": make_agent(dept2, username="agent-two"),
        "manager": make_manager(username="the-manager"),
        "admin": get_user_model().objects.create_superuser("the-admin", "admin@example.com", "pw-for-tests"),
    }
    customer_a = Customer.objects.create(name="Alpha Customer", email=EMAIL_A)
    customer_b = Customer.objects.create(name="Bravo Customer", email=EMAIL_B)
    ticket_a = make_ticket(department=dept1, customer=customer_a, subject=f"Subject {SECRET_A}", body=SECRET_A)
    ticket_b = make_ticket(department=dept2, customer=customer_b, subject=f"Subject {SECRET_B}", body=SECRET_B)
    for ticket, note in ((ticket_a, INTERNAL_A), (ticket_b, INTERNAL_B)):
        services.message_create(
            ticket=ticket, author_kind="agent", author_user=users["manager"], body=note, is_internal=True
        )

    def attach(ticket, *, internal: bool, name: str) -> Attachment:
        message = ticket.messages.filter(is_internal=internal).order_by("seq").first()
        data = f"file of {ticket.reference} {name}".encode()
        stored, digest = storage.store("attachments", data, suffix=".txt")
        return Attachment.objects.create(
            ticket=ticket,
            message=message,
            filename=name,
            content_type="text/plain",
            size=len(data),
            sha256=digest,
            storage_name=stored,
        )

    def draft(ticket) -> AIDraft:
        question = ticket.messages.filter(author_kind="customer").order_by("seq").first()
        return AIDraft.objects.create(
            ticket=ticket, in_reply_to=question, body=f"draft for {ticket.reference}", confidence=0.4, provider="local"
        )

    now = timezone.now()
    published = Article.objects.create(
        title="Reset your password", slug="reset-password", body="Click *forgot*.", status="published"
    )
    Article.objects.create(title="Unreleased plan", slug="unreleased-plan", body="Secret roadmap.", status="draft")
    manager_key, _ = api_key_create(name="manager key", user=users["manager"], scopes=["tickets:read"])
    admin_key, _ = api_key_create(name="admin key", user=users["admin"], scopes=["tickets:read"])
    subscription = WebhookSubscription.objects.create(
        name="CRM", url="https://crm.example.com/hook", events=["ticket.created"], secret="s" * 32
    )
    interval = IntervalSchedule.objects.create(every=10, period="minutes")
    impression = SuggestionImpression.objects.create(article=published, place="help_search", query="password")
    objects = {
        "attachment_a": attach(ticket_a, internal=False, name="a.txt"),
        "attachment_a_internal": attach(ticket_a, internal=True, name="a-internal.txt"),
        "attachment_b": attach(ticket_b, internal=False, name="b.txt"),
        "draft_a": draft(ticket_a),
        "answer_a": Message.objects.create(
            ticket=ticket_a, seq=90, author_kind="ai", body="Click *forgot*.", ai_confidence=0.9, citations=[]
        ),
        "draft_b": draft(ticket_b),
        "airun_a": AIRun.objects.create(key=f"triage:{ticket_a.pk}", ticket=ticket_a, kind="triage", provider="local"),
        "article": published,
        "category": Category.objects.create(name="Account", slug="account"),
        "ingest_job": IngestJob.objects.create(created_by=users["manager"]),
        "impression": impression,
        "click_token": signing.dumps(impression.pk, salt="supportflow.kb.suggestion-click"),
        "gap": KnowledgeGap.objects.create(
            label="How do I export notes?",
            size=3,
            examples=["How do I export notes?"],
            first_seen=now,
            last_seen=now,
            window_start=now.date() - dt.timedelta(days=30),
            window_end=now.date(),
            computed_at=now,
        ),
        "manager_key": manager_key,
        "admin_key": admin_key,
        "subscription": subscription,
        "delivery": WebhookDelivery.objects.create(
            subscription=subscription, event="ticket.created", event_id=uuid.uuid4(), payload={"ticket": "x"}
        ),
        "escalation_rule": EscalationRule.objects.create(
            name="Legal words", condition="keyword", value="lawyer", reason="Legal"
        ),
        "triage_model": TriageModel.objects.create(version=1, algorithm="logreg", embedding_model="minilm"),
        # a shared macro for department 1's tickets: its agents and managers use it, managers change it
        "macro_a": Macro.objects.create(name="Greeting", body="Hello {{ customer.first_name }}", department=dept1),
        "interval": interval,
        "crontab": CrontabSchedule.objects.create(minute="0", hour="3"),
        "solar": SolarSchedule.objects.create(event="sunrise", latitude=50, longitude=8),
        "clocked": ClockedSchedule.objects.create(clocked_time=now + dt.timedelta(days=1)),
        "periodic_task": PeriodicTask.objects.create(
            name="zq task", task="supportflow.integrations.tasks.noop", interval=interval
        ),
        "group": Group.objects.get(name="Agents"),
        "tag": tag_save(tag=Tag(), name="vip", colour="#7c3aed"),
        "shared_view": SavedView.objects.create(
            owner=users["manager"], name="Dept one backlog", query="view=open", department=dept1
        ),
    }
    # Two AI configuration versions and a draft experiment between them (managers only).
    from tickets.models import AIConfigVersion, AIExperiment

    prompts = {"triage_prompt": "Triage {canary}", "reply_prompt": "Reply {canary}"}
    objects["ai_version"] = AIConfigVersion.objects.create(label="authz-a", **prompts)
    objects["ai_experiment"] = AIExperiment.objects.create(
        name="authz",
        version_a=objects["ai_version"],
        version_b=AIConfigVersion.objects.create(label="authz-b", **prompts),
    )
    # The website widget: both conversations were started on one site's widget.
    from tickets.models import WidgetConversation, WidgetSite

    objects["widget_site"] = WidgetSite.objects.create(name="Shop", allowed_origins=["https://shop.example.com"])
    for ticket in (ticket_a, ticket_b):
        WidgetConversation.objects.create(ticket=ticket, site=objects["widget_site"])
    sessions = {}
    for role, user in users.items():
        browser = Client()
        browser.force_login(user)
        sessions[role] = browser.cookies[settings.SESSION_COOKIE_NAME].value
    return World(
        sessions=sessions,
        dept1=dept1,
        dept2=dept2,
        users=users,
        ticket_a=ticket_a,
        ticket_b=ticket_b,
        token_a=selectors.ticket_customer_token(ticket=ticket_a),
        token_b=selectors.ticket_customer_token(ticket=ticket_b),
        objects=objects,
    )


@pytest.fixture(scope="class", name="world")
def world_fixture(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once per class, in a transaction rolled back after it; each test runs in a savepoint.

    Class-scoped so the transactional websocket tests never run while it is open."""
    with (
        django_db_blocker.unblock(),
        override_settings(
            EMAIL_PRIVATE_ROOT=tmp_path_factory.mktemp("authz-email"),
            INBOUND_EMAIL_TOKEN="inbound-token-no-role-holds",
            FEATURE_AGENTS_SEE_ALL_DEPARTMENTS=False,
            METRICS_TOKEN="",
        ),
    ):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def walk_routes(resolver: URLResolver | None = None, prefix: str = "") -> list[tuple[str, URLPattern]]:
    """Every HTTP route of the URL conf as ``(full pattern, URLPattern)``, admin and API router included."""
    resolver = resolver or get_resolver()
    routes = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            routes.extend(walk_routes(entry, prefix + str(entry.pattern)))
        else:
            routes.append((prefix + str(entry.pattern), entry))
    return routes


def walk_websocket_routes() -> list[str]:
    from supportflow.routing import websocket_urlpatterns

    return [str(p.pattern) for p in websocket_urlpatterns]
