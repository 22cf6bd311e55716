"""Tags: the service (each change a TicketEvent), the ticket page's panel and its CSRF-checked endpoint
(scoped: 404 for a ticket out of the agent's queues), the list's chips and tag filter, the tag admin, and
the live refresh of the panel for the other agents on the ticket."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.urls import reverse

from supportflow import ratelimit
from tickets.admin import inbox as inbox_admin
from tickets.consumers import db
from tickets.models import Tag, Ticket, TicketEvent
from tickets.services import TicketRuleError
from tickets.services import tags as tag_services
from tickets.tests.factories import UserFactory, make_agent, make_ticket, set_status
from tickets.tests.test_consumers import agent_socket, receive_until

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tickets_ticket_changelist")
XSS = '<img src=x onerror="window.__xss=1">'


def tags_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_tags", args=[ticket.pk])


def tag_names(ticket: Ticket) -> list[str]:
    return sorted(ticket.tags.values_list("name", flat=True))


def tag_events(ticket: Ticket) -> list[tuple]:
    return list(
        ticket.events.filter(field="tags").order_by("pk").values_list("kind", "from_value", "to_value", "actor_id")
    )


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


# --- the service -------------------------------------------------------------------------------------


def test_adding_a_tag_creates_it_once_and_records_an_event(ticket, agent):
    before = Ticket.objects.get(pk=ticket.pk).updated_at

    tag = tag_services.ticket_tag_add(ticket=ticket, name="  Refund  request ", actor=agent)
    again = tag_services.ticket_tag_add(ticket=ticket, name="REFUND REQUEST", actor=agent)

    assert again == tag
    assert (tag.name, Tag.objects.count()) == ("Refund request", 1)
    assert tag.colour in tag_services.PALETTE
    assert tag_names(ticket) == ["Refund request"]
    assert tag_events(ticket) == [("tag_added", "", "Refund request", agent.pk)]
    assert Ticket.objects.get(pk=ticket.pk).updated_at > before  # an open list sees the change


def test_removing_a_tag_records_an_event_and_removing_it_again_changes_nothing(ticket, agent):
    tag = tag_services.ticket_tag_add(ticket=ticket, name="bug", actor=agent)

    assert tag_services.ticket_tag_remove(ticket=ticket, tag=tag, actor=agent) is True
    assert tag_services.ticket_tag_remove(ticket=ticket, tag=tag, actor=agent) is False

    assert tag_names(ticket) == []
    assert Tag.objects.filter(pk=tag.pk).exists()  # the tag stays for other tickets
    assert [kind for kind, *_ in tag_events(ticket)] == ["tag_added", "tag_removed"]


@pytest.mark.parametrize(
    ("name", "message"),
    [("   ", "Give the tag a name"), ("x" * 41, "at most 40"), ("bad\u202etag", "invisible"), ("a\nb\x00", "control")],
)
def test_a_bad_tag_name_is_refused_and_nothing_changes(ticket, agent, name, message):
    with pytest.raises(TicketRuleError, match=message):
        tag_services.ticket_tag_add(ticket=ticket, name=name, actor=agent)

    assert not Tag.objects.exists()
    assert tag_events(ticket) == []


def test_a_ticket_has_at_most_twenty_tags(ticket, agent):
    for i in range(tag_services.TAGS_PER_TICKET_MAX):
        tag_services.ticket_tag_add(ticket=ticket, name=f"t{i}", actor=agent)

    with pytest.raises(TicketRuleError, match="at most 20 tags"):
        tag_services.ticket_tag_add(ticket=ticket, name="one more", actor=agent)
    assert ticket.tags.count() == 20


def test_deleting_a_tag_records_its_removal_on_every_ticket(department, manager):
    first, second = make_ticket(department=department), make_ticket(department=department)
    for ticket in (first, second):
        tag = tag_services.ticket_tag_add(ticket=ticket, name="obsolete", actor=manager)

    assert tag_services.tag_delete(tag=tag, actor=manager) == 2

    assert not Tag.objects.exists()
    for ticket in (first, second):
        assert tag_events(ticket)[-1] == ("tag_removed", "obsolete", "", manager.pk)


# --- the ticket page's panel and its endpoint ----------------------------------------------------------


def test_the_ticket_page_shows_the_tags_panel(agent_client, ticket, agent):
    tag_services.ticket_tag_add(ticket=ticket, name="vip", actor=agent)

    html = agent_client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])).content.decode()

    assert 'id="sf-tags"' in html
    assert ">vip<" in html
    assert f'action="{tags_url(ticket)}"' in html


def test_an_agent_adds_a_tag_with_htmx_and_gets_the_panel_back(agent_client, ticket, agent):
    response = agent_client.post(tags_url(ticket), {"action": "add", "name": "billing"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert 'id="sf-tags"' in response.content.decode()
    assert ">billing<" in response.content.decode()
    assert tag_names(ticket) == ["billing"]
    assert tag_events(ticket) == [("tag_added", "", "billing", agent.pk)]


def test_a_plain_form_post_goes_back_to_the_ticket_page(agent_client, ticket):
    tag = tag_services.ticket_tag_add(ticket=ticket, name="billing")

    response = agent_client.post(tags_url(ticket), {"action": "remove", "tag": tag.pk})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:tickets_ticket_change", args=[ticket.pk])
    assert tag_names(ticket) == []


def test_a_bad_tag_gets_a_clear_message_in_the_panel(agent_client, ticket):
    empty = agent_client.post(tags_url(ticket), {"action": "add", "name": ""}, HTTP_HX_REQUEST="true")
    unknown = agent_client.post(tags_url(ticket), {"action": "remove", "tag": "abc"}, HTTP_HX_REQUEST="true")
    action = agent_client.post(tags_url(ticket), {"action": "rename"}, HTTP_HX_REQUEST="true")

    assert "Give the tag a name" in empty.content.decode()
    assert "No such tag" in unknown.content.decode()
    assert action.status_code == 400
    assert tag_events(ticket) == []


def test_tag_names_are_escaped_in_the_panel_and_the_list(agent_client, ticket, agent):
    agent_client.post(tags_url(ticket), {"action": "add", "name": XSS}, HTTP_HX_REQUEST="true")

    panel = agent_client.get(tags_url(ticket)).content.decode()
    listing = agent_client.get(CHANGELIST, {"view": "open"}).content.decode()

    for html in (panel, listing):
        assert XSS not in html
        assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in html


def test_the_endpoint_needs_a_csrf_token(agent, ticket):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)

    response = client.post(tags_url(ticket), {"action": "add", "name": "sneaky"})

    assert response.status_code == 403
    assert not Tag.objects.exists()


def test_a_ticket_outside_the_agents_queues_is_not_found(client, other_department, agent):
    foreign = make_ticket(department=other_department)
    tag = tag_services.ticket_tag_add(ticket=foreign, name="theirs")
    client.force_login(agent)

    assert client.get(tags_url(foreign)).status_code == 404
    assert client.post(tags_url(foreign), {"action": "add", "name": "mine now"}).status_code == 404
    assert client.post(tags_url(foreign), {"action": "remove", "tag": tag.pk}).status_code == 404
    assert tag_names(foreign) == ["theirs"]
    assert not Tag.objects.filter(name="mine now").exists()


def test_staff_who_may_only_view_tickets_cannot_change_tags(client, ticket):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_ticket"), Permission.objects.get(codename="view_all_departments_ticket")
    )
    client.force_login(viewer)

    assert client.get(tags_url(ticket)).status_code == 200
    assert client.post(tags_url(ticket), {"action": "add", "name": "x"}).status_code == 403
    assert not Tag.objects.exists()


def test_tagging_is_rate_limited(agent_client, ticket, monkeypatch):
    monkeypatch.setattr(inbox_admin, "TAG_CHANGES", ratelimit.Limit(2, 60))

    statuses = [
        agent_client.post(tags_url(ticket), {"action": "add", "name": f"t{i}"}, HTTP_HX_REQUEST="true").status_code
        for i in range(3)
    ]

    assert statuses == [200, 200, 429]
    assert tag_names(ticket) == ["t0", "t1"]


def test_a_closed_ticket_can_still_be_tagged_for_reporting(agent_client, ticket):
    set_status(ticket, "closed")

    agent_client.post(tags_url(ticket), {"action": "add", "name": "reviewed"}, HTTP_HX_REQUEST="true")

    assert tag_names(ticket) == ["reviewed"]


# --- the list: chips and the tag filter ----------------------------------------------------------------


def test_the_list_shows_tag_chips_and_filters_by_tag(agent_client, department, agent):
    tagged, plain = make_ticket(department=department, subject="Tagged one"), make_ticket(department=department)
    tag = tag_services.ticket_tag_add(ticket=tagged, name="refund", actor=agent)

    everything = agent_client.get(CHANGELIST, {"view": "open"})
    filtered = agent_client.get(CHANGELIST, {"view": "open", "tag": tag.pk})

    assert 'class="sf-tag"' in everything.content.decode()
    assert {t.pk for t in everything.context["cl"].result_list} == {tagged.pk, plain.pk}
    assert {t.pk for t in filtered.context["cl"].result_list} == {tagged.pk}
    assert "By tag" in everything.content.decode()


# --- the tag admin: agents look, managers manage -------------------------------------------------------


def test_agents_see_tags_but_only_managers_change_them(client, agent, manager, ticket):
    tag = tag_services.ticket_tag_add(ticket=ticket, name="vip")
    client.force_login(agent)
    assert client.get(reverse("admin:tickets_tag_changelist")).status_code == 200
    assert client.get(reverse("admin:tickets_tag_add")).status_code == 403
    assert client.post(reverse("admin:tickets_tag_delete", args=[tag.pk]), {"post": "yes"}).status_code == 403

    client.force_login(manager)
    response = client.post(
        reverse("admin:tickets_tag_change", args=[tag.pk]), {"name": "VIP customer", "colour": "#7c3aed"}
    )
    assert response.status_code == 302
    tag.refresh_from_db()
    assert (tag.name, tag.colour) == ("VIP customer", "#7c3aed")

    duplicate = client.post(reverse("admin:tickets_tag_add"), {"name": "vip CUSTOMER", "colour": "#000000"})
    assert duplicate.status_code == 200  # the form again, with the error
    assert Tag.objects.count() == 1

    client.post(reverse("admin:tickets_tag_delete", args=[tag.pk]), {"post": "yes"})
    assert not Tag.objects.exists()
    assert tag_events(ticket)[-1][:2] == ("tag_removed", "VIP customer")
    assert TicketEvent.objects.filter(kind="tag_removed", actor=manager).count() == 1


# --- live: the other agents on the ticket page reload the panel ----------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
def test_a_tag_change_reaches_the_agents_on_the_ticket_page(department):
    ticket = make_ticket(department=department)
    watcher, tagger = make_agent(department), make_agent(department)
    socket = agent_socket(watcher, ticket)

    async def scenario():
        assert (await socket.connect(timeout=5))[0]
        await db(tag_services.ticket_tag_add)(ticket=ticket, name="urgent-fix", actor=tagger)
        frame = await receive_until(socket, 'id="sf-tags"')
        assert f'hx-get="{tags_url(ticket)}"' in frame
        assert "urgent-fix" not in frame  # only a placeholder: each agent loads the panel with their rights
        await socket.disconnect()

    async_to_sync(scenario)()
