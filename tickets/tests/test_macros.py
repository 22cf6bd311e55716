"""Macros (canned replies): what may be saved, how one renders for a ticket, who may render which, and a
reply that applies a macro's actions through the services — Django's test client against the real
database and the Redis-backed rate limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from knowledge.models import Article
from supportflow import ratelimit
from supportflow.demo.texts import MACROS
from supportflow.markdown import render_message
from tickets import services
from tickets.admin import macros as macro_admin
from tickets.models import Macro, Ticket
from tickets.models.macros import actions_errors, article_slugs, body_errors
from tickets.tests.factories import CustomerFactory, make_agent, make_manager, make_ticket

BASE = "https://support.example.com"


def change_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def render_url(ticket: Ticket, macro: Macro) -> str:
    return reverse("admin:tickets_ticket_macro", args=[ticket.pk, macro.pk])


def reply(client, ticket: Ticket, body: str, *macros: Macro, **extra):
    data = {"_reply": "1", "body": body, "macros": ",".join(str(m.pk) for m in macros), **extra}
    return client.post(change_url(ticket), data, HTTP_HX_REQUEST="true")


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def article(db):
    return Article.objects.create(
        title="Refunds [and] *returns*", slug="refund-policy", body="Within 14 days.", status="published"
    )


def shared_macro(manager, **fields) -> Macro:
    fields.setdefault("name", "Shared")
    fields.setdefault("body", "Hi {{ customer.first_name }}")
    return services.macro_save(macro=Macro(**fields), actor=manager, shared=True)


# --- what may be saved ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Hi {{ customer.email }}", "Unknown placeholder(s): {{ customer.email }}"),
        ("Hi {{ settings.SECRET_KEY }} and {{ request.user }}", "{{ settings.SECRET_KEY }}, {{ request.user }}"),
        ("{% load static %}{{ customer.name|upper }}", "{{ customer.name|upper }}"),
        ("Hi {{ customer.name", "A placeholder is not closed"),
        ("See {{ article:../../etc }}", "does not name an article"),
        ("See {{ article:no-such-article }}", "No published help-center article with the slug(s): no-such-article"),
    ],
)
def test_a_macro_with_an_unknown_or_broken_placeholder_is_not_saved(agent, body, message):
    with pytest.raises(ValidationError) as caught:
        services.macro_save(macro=Macro(name="Greeting", body=body), actor=agent)

    assert message in " ".join(caught.value.message_dict["body"])
    assert Macro.objects.count() == 0


@pytest.mark.django_db
def test_an_article_placeholder_needs_a_published_article(agent):
    Article.objects.create(title="Roadmap", slug="roadmap", body="Secret.", status="draft")

    with pytest.raises(ValidationError, match=r"slug\(s\): roadmap"):
        services.macro_save(macro=Macro(name="Plans", body="{{ article:roadmap }}"), actor=agent)
    assert Macro.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "actions",
    [
        {"status": "new"},
        {"status": "deleted"},
        {"priority": "extreme"},
        {"assign": "someone"},
        {"assign": True},
        {"tags": "vip"},
        {"tags": ["<script>"]},
        {"tags": [f"t{n}" for n in range(6)]},
        {"delete_ticket": True},
        ["status", "closed"],
    ],
)
def test_a_macro_with_a_bad_action_is_not_saved(agent, actions):
    with pytest.raises(ValidationError) as caught:
        services.macro_save(macro=Macro(name="Act", body="Done.", actions=actions), actor=agent)

    assert caught.value.message_dict["__all__"]
    assert Macro.objects.count() == 0


@pytest.mark.django_db
def test_an_agent_cannot_make_a_macro_that_assigns_to_a_colleague_but_a_manager_can(agent, manager, department):
    colleague = make_agent(department)
    macro = Macro(name="To Sam", body="Over to Sam.", actions={"assign": colleague.pk})

    with pytest.raises(ValidationError, match="yourself only"):
        services.macro_save(macro=macro, actor=agent)
    services.macro_save(
        macro=Macro(name="To Sam", body="Over to Sam.", actions={"assign": colleague.pk}), actor=manager
    )

    assert list(Macro.objects.values_list("name", "owner")) == [("To Sam", manager.pk)]


@pytest.mark.django_db
def test_only_managers_share_macros_and_agents_limit_them_to_their_own_queues(agent, manager, other_department):
    with pytest.raises(ValidationError, match="Only managers share macros"):
        services.macro_save(macro=Macro(name="Hi", body="Hello"), actor=agent, shared=True)
    with pytest.raises(ValidationError, match="department you work in"):
        services.macro_save(macro=Macro(name="Hi", body="Hello", department=other_department), actor=agent)
    assert Macro.objects.count() == 0

    shared = shared_macro(manager, department=other_department)
    with pytest.raises(ValidationError, match="not yours to change"):
        services.macro_save(macro=shared, actor=agent)  # nor can an agent take a shared one over
    assert Macro.objects.get().owner is None


@pytest.mark.django_db
def test_macro_names_are_unique_per_owner_and_among_shared_ones(agent, manager):
    services.macro_save(macro=Macro(name="Thanks", body="Thanks!"), actor=agent)
    shared_macro(manager, name="Thanks")  # a shared one may share a personal one's name

    with pytest.raises(ValidationError):
        services.macro_save(macro=Macro(name="THANKS", body="Thanks!"), actor=agent)
    with pytest.raises(ValidationError):
        shared_macro(manager, name="thanks")
    assert Macro.objects.count() == 2


# --- rendering ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rendering_fills_each_placeholder_and_links_the_article(agent, ticket, article):
    agent.first_name = "Dana"
    ticket.customer.name = "Grace Hopper"
    macro = Macro(
        name="Refund",
        body="Hi {{customer.first_name}} ({{ customer.name }}), re {{ ticket.reference }} “{{ ticket.subject }}”: "
        "{{ article:refund-policy }} — {{ agent.first_name }}",
    )

    text = services.macro_render(macro=macro, ticket=ticket, agent=agent, base_url=BASE + "/")

    assert text == (
        f"Hi Grace (Grace Hopper), re {ticket.reference} “Help needed”: "
        f"[Refunds \\[and\\] \\*returns\\*]({BASE}/help/articles/refund-policy/) — Dana"
    )
    assert 'href="https://support.example.com/help/articles/refund-policy/"' in render_message(text)


@pytest.mark.django_db
def test_a_customer_name_renders_as_text_never_as_markup_or_a_placeholder(agent_client, agent, department, manager):
    name = '<img src=x onerror="alert(1)">[click](https://evil.example) *{{ ticket.subject }}*'
    ticket = make_ticket(department=department, customer=CustomerFactory(name=name), subject="Secret subject")
    macro = shared_macro(manager, name="<b>Bold</b> macro", body="Dear {{ customer.name }}")

    response = agent_client.get(render_url(ticket, macro))

    data = response.json()
    assert response.status_code == 200
    assert "Secret subject" not in data["text"]  # one pass: the name's braces are not a placeholder
    assert "\\[click\\](https://evil.example)" in data["text"]
    assert "&lt;b&gt;Bold&lt;/b&gt; macro" in data["chip"]
    assert "<b>" not in data["chip"]
    reply(agent_client, ticket, data["text"], macro)
    html = render_message(ticket.messages.get(seq=2).body)
    assert "<img" not in html
    assert "<em>" not in html
    assert "&lt;img src=x" in html
    assert "*{{ ticket.subject }}*" in html
    assert ">click</a>" not in html  # no link with a label of the customer's choosing


@pytest.mark.django_db
def test_an_article_unpublished_since_is_a_409_that_says_so(agent_client, ticket, manager, article):
    macro = shared_macro(manager, body="{{ article:refund-policy }}")
    Article.objects.filter(pk=article.pk).update(status="archived")

    response = agent_client.get(render_url(ticket, macro))

    assert response.status_code == 409
    assert "not published any more" in response.json()["error"]


# --- the render endpoint: scoped, read-only, limited ------------------------------------------------------


@pytest.mark.django_db
def test_the_render_endpoint_is_scoped_to_the_ticket_and_the_macros_the_agent_may_use(
    client, agent, manager, department, other_department
):
    ticket = make_ticket(department=department)
    foreign_ticket = make_ticket(department=other_department)
    colleague = make_agent(department)
    usable = shared_macro(manager, name="Usable", department=department)
    other_queue = shared_macro(manager, name="Other queue", department=other_department)
    personal = services.macro_save(macro=Macro(name="Mine", body="Mine"), actor=colleague)
    client.force_login(agent)

    assert client.get(render_url(ticket, usable)).status_code == 200
    assert client.get(render_url(foreign_ticket, usable)).status_code == 404
    assert client.get(render_url(ticket, other_queue)).status_code == 404
    assert client.get(render_url(ticket, personal)).status_code == 404
    assert client.post(render_url(ticket, usable)).status_code == 405
    client.force_login(make_agent(other_department))
    assert client.get(render_url(ticket, usable)).status_code == 404
    assert Macro.objects.filter(usage_count__gt=0).count() == 0  # rendering counts nothing


@pytest.mark.django_db
def test_the_render_endpoint_is_rate_limited_per_agent(agent_client, ticket, manager, monkeypatch):
    monkeypatch.setattr(macro_admin, "RENDER_LIMIT", ratelimit.Limit(2, 60))
    macro = shared_macro(manager)

    statuses = [agent_client.get(render_url(ticket, macro)).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


@pytest.mark.django_db
def test_anonymous_and_customers_are_sent_to_sign_in(client, ticket, manager):
    macro = shared_macro(manager)
    response = client.get(render_url(ticket, macro))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- sending a reply with a macro ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_sending_applies_the_macros_actions_through_the_services_and_counts_the_use(
    agent_client, agent, ticket, manager
):
    macro = shared_macro(manager, actions={"assign": "me", "priority": "high", "status": "pending"})

    response = reply(agent_client, ticket, "We refund within 14 days.", macro)

    assert response.status_code == 200
    assert "Reply sent." in response.content.decode()
    ticket.refresh_from_db()
    assert (ticket.assignee, ticket.priority, ticket.status) == (agent, "high", "pending")
    assert ticket.messages.get(seq=2).body == "We refund within 14 days."
    events = list(ticket.events.exclude(kind="created").values_list("kind", "to_value", "actor"))
    assert ("assigned", agent.get_username(), agent.pk) in events
    assert ("priority_changed", "high", agent.pk) in events
    assert ("status_changed", "pending", agent.pk) in events
    macro.refresh_from_db()
    assert macro.usage_count == 1
    assert macro.last_used_at is not None


@pytest.mark.django_db
def test_the_status_chosen_in_the_box_wins_over_the_macros(agent_client, ticket, manager):
    macro = shared_macro(manager, actions={"status": "pending"})

    reply(agent_client, ticket, "Fixed it.", macro, then_status="resolved")

    ticket.refresh_from_db()
    assert ticket.status == "resolved"


@pytest.mark.django_db
def test_a_macro_action_that_breaks_a_rule_sends_nothing_and_keeps_the_text(agent_client, ticket, manager, department):
    helper = make_agent(department)
    macro = shared_macro(manager, actions={"assign": helper.pk, "status": "resolved"})
    helper.is_active = False
    helper.save()

    response = reply(agent_client, ticket, "Handing you to a colleague.", macro)

    html = response.content.decode()
    assert response.status_code == 200
    assert "is not an active agent" in html
    assert "Handing you to a colleague." in html  # still in the box
    assert f'value="{macro.pk}"' in html  # and so is the macro, with its chip
    ticket.refresh_from_db()
    assert (ticket.messages.count(), ticket.status, ticket.assignee) == (1, "new", None)
    macro.refresh_from_db()
    assert macro.usage_count == 0


@pytest.mark.django_db
def test_a_reply_naming_a_macro_the_agent_may_not_use_is_refused(agent_client, ticket, department):
    colleague = make_agent(department)
    theirs = services.macro_save(macro=Macro(name="Theirs", body="x", actions={"status": "closed"}), actor=colleague)

    response = reply(agent_client, ticket, "Hello", theirs)
    garbled = reply(agent_client, ticket, "Hello", macros="1;DROP")

    assert "no longer available" in response.content.decode()
    assert "garbled" in garbled.content.decode()
    ticket.refresh_from_db()
    assert (ticket.messages.count(), ticket.status) == (1, "new")


@pytest.mark.django_db
def test_a_reply_with_a_macro_needs_the_csrf_token(agent, ticket, manager):
    macro = shared_macro(manager, actions={"status": "resolved"})
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)

    response = client.post(change_url(ticket), {"_reply": "1", "body": "Hi", "macros": str(macro.pk)})

    assert response.status_code == 403
    ticket.refresh_from_db()
    macro.refresh_from_db()
    assert (ticket.messages.count(), ticket.status, macro.usage_count) == (1, "new", 0)


# --- the macro list and form in the console ------------------------------------------------------------------


@pytest.mark.django_db
def test_an_agent_adds_a_personal_macro_in_the_console(agent_client, agent):
    data = {"name": "Sorry", "body": "Sorry, {{ customer.first_name }}.", "then_status": "pending", "tags": "apology"}

    response = agent_client.post(reverse("admin:tickets_macro_add"), data)

    assert response.status_code == 302, response.content.decode()[:3000]
    macro = Macro.objects.get()
    assert (macro.owner, macro.actions) == (agent, {"status": "pending", "tags": ["apology"]})


@pytest.mark.django_db
def test_the_console_form_shows_what_is_wrong_instead_of_failing(agent_client):
    data = {"name": "Broken", "body": "Hi {{ customer.phone }}", "priority": "urgent", "shared": "on"}

    response = agent_client.post(reverse("admin:tickets_macro_add"), data)

    assert response.status_code == 200
    assert "Unknown placeholder(s): {{ customer.phone }}" in response.content.decode()
    assert Macro.objects.count() == 0


@pytest.mark.django_db
def test_agents_read_shared_macros_but_only_managers_change_them(client, agent, manager, department):
    shared = shared_macro(manager, name="Team greeting", department=department)
    colleague = make_agent(department)
    theirs = services.macro_save(macro=Macro(name="Colleague's own", body="x"), actor=colleague)
    client.force_login(agent)

    listing = client.get(reverse("admin:tickets_macro_changelist")).content.decode()
    change = client.post(reverse("admin:tickets_macro_change", args=[shared.pk]), {"name": "Mine now", "body": "x"})
    delete = client.post(reverse("admin:tickets_macro_delete", args=[shared.pk]), {"post": "yes"})

    assert "Team greeting" in listing
    assert "Colleague&#x27;s own" not in listing
    assert "Colleague's own" not in listing
    assert change.status_code == 403
    assert delete.status_code == 403
    assert client.get(reverse("admin:tickets_macro_change", args=[theirs.pk])).status_code == 302  # not found
    client.force_login(manager)
    response = client.post(
        reverse("admin:tickets_macro_change", args=[shared.pk]),
        {"name": "Team hello", "body": "Hello!", "shared": "on", "department": department.pk},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    shared.refresh_from_db()
    assert (shared.name, shared.owner) == ("Team hello", None)


@pytest.mark.django_db
def test_the_macro_list_says_what_each_macro_does(client, manager, department):
    agent = make_agent(department)
    shared_macro(manager, name="Hand over", actions={"assign": agent.pk, "priority": "high"})
    client.force_login(manager)

    html = client.get(reverse("admin:tickets_macro_changelist")).content.decode()

    assert f"assign to {agent.get_username()}, priority high" in html


# --- the demo's macros -------------------------------------------------------------------------------------


def test_the_demo_macros_are_valid_and_link_articles_of_the_demo_knowledge_base():
    demo_kb = Path(__file__).resolve().parents[2] / "knowledge" / "demo_kb"
    assert 5 <= len(MACROS) <= 6
    assert {m["owner"] is None for m in MACROS} == {True, False}  # shared and personal ones
    for spec in MACROS:
        assert body_errors(spec["body"]) == [], spec["name"]
        assert actions_errors(spec["actions"]) == [], spec["name"]
        for slug in article_slugs(spec["body"]):
            assert (demo_kb / f"{slug}.md").exists(), slug
    assert json.loads(json.dumps(MACROS)) == MACROS


@pytest.mark.django_db
def test_the_demo_loads_its_macros_once_shared_by_a_manager_and_personal_by_their_owner():
    from io import StringIO

    from supportflow.demo.seed import macros_ensure
    from tickets.tests.factories import DepartmentFactory

    billing, technical = DepartmentFactory(slug="billing"), DepartmentFactory(slug="technical")
    alice, bob = make_agent(billing, technical, username="alice"), make_agent(technical, username="bob")
    make_manager(billing, technical, username="maria")
    for slug in {slug for spec in MACROS for slug in article_slugs(spec["body"])}:
        Article.objects.create(title=slug.replace("-", " "), slug=slug, body="Text.", status="published")
    out, err = StringIO(), StringIO()

    macros_ensure(stdout=out, stderr=err)
    macros_ensure(stdout=out, stderr=err)

    assert err.getvalue() == ""
    assert out.getvalue() == f"Macros: {len(MACROS)} added."
    owners = dict(Macro.objects.values_list("name", "owner__username"))
    assert owners == {spec["name"]: spec["owner"] for spec in MACROS}
    assert Macro.objects.get(name="Refund policy").department == billing
    assert alice.macros.count() == 1
    assert bob.macros.count() == 1


@pytest.mark.django_db
def test_the_macro_pages_render_for_agents_and_managers(client, agent, manager, department):
    shared = shared_macro(manager, name="Team greeting", department=department, actions={"status": "resolved"})
    client.force_login(agent)

    add = client.get(reverse("admin:tickets_macro_add")).content.decode()
    view = client.get(reverse("admin:tickets_macro_change", args=[shared.pk]))

    assert 'name="then_status"' in add
    assert 'name="shared"' not in add  # agents keep their macros to themselves
    assert view.status_code == 200
    assert "set resolved" in view.content.decode()
    assert 'name="body"' not in view.content.decode()  # read-only for them
    client.force_login(manager)
    assert 'name="shared"' in client.get(reverse("admin:tickets_macro_add")).content.decode()


@pytest.mark.django_db
def test_out_of_range_ids_are_a_404_or_a_message_never_a_500(agent_client, ticket, manager):
    huge = 2**70
    macro = shared_macro(manager)
    render = agent_client.get(reverse("admin:tickets_ticket_macro", args=[ticket.pk, huge]))
    foreign = agent_client.get(reverse("admin:tickets_ticket_macro", args=[huge, macro.pk]))
    sent = reply(agent_client, ticket, "Hello", macros=f"{macro.pk},{huge}")
    page = agent_client.get(change_url(ticket) + f"?_nav={huge}.{huge}")

    assert (render.status_code, foreign.status_code) == (404, 404)
    assert "no longer available" in sent.content.decode()
    assert page.status_code == 200
    assert 'rel="next"' not in page.content.decode()
    assert ticket.messages.count() == 1
