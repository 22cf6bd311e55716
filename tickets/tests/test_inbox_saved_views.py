"""Saved views: an agent saves the list's filters under a name; a manager shares one with a team; who sees,
renames and deletes which — through the console's endpoints (CSRF-checked) and the service."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from supportflow import ratelimit
from tickets.admin import inbox as inbox_admin
from tickets.models import SavedView
from tickets.services import TicketRuleError
from tickets.services import saved_views as services
from tickets.tests.factories import make_agent, make_manager

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tickets_ticket_changelist")
SAVE = reverse("admin:tickets_ticket_view_save")


def change_url(view: SavedView) -> str:
    return reverse("admin:tickets_ticket_view_change", args=[view.pk])


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def saved_names(client: Client) -> list[str]:
    response = client.get(CHANGELIST, {"view": "open"})
    return [item.label for item in response.context["inbox"]["saved"]]


@pytest.fixture
def team(department, other_department):
    return {
        "agent": make_agent(department, username="ana"),
        "teammate": make_agent(department, username="ben"),
        "outsider": make_agent(other_department, username="olga"),
        "manager": make_manager(username="mia"),
        "other_manager": make_manager(username="max"),
    }


# --- saving ------------------------------------------------------------------------------------------


def test_an_agent_saves_the_lists_filters_as_a_personal_view(team):
    client = client_for(team["agent"])

    response = client.post(SAVE, {"name": "  My   urgent ", "query": "priority__exact=urgent&view=mine&p=3"})

    view = SavedView.objects.get()
    assert (view.owner, view.name, view.query, view.department) == (
        team["agent"],
        "My urgent",
        "view=mine&priority__exact=urgent",
        None,
    )
    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}?view=mine&priority__exact=urgent"
    assert saved_names(client) == ["My urgent"]
    assert saved_names(client_for(team["teammate"])) == []  # personal


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("customer__email__startswith=a", "cannot be part of a saved view"),
        ("assignee__password__startswith=pbkdf2", "cannot be part of a saved view"),
        ("status__exact=gone", "Unknown value"),
        ("p=2&o=3", "Filter the list first"),
        ("q=" + "x" * 600, "too long to save"),
    ],
)
def test_filters_outside_the_lists_vocabulary_are_refused_and_nothing_is_saved(team, query, message):
    response = client_for(team["agent"]).post(SAVE, {"name": "Sneaky", "query": query})

    assert response.status_code == 302
    assert any(message in text for text in messages_of(response))
    assert not SavedView.objects.exists()


def test_a_name_is_required_and_unique_per_owner_whatever_its_case(team):
    client = client_for(team["agent"])
    client.post(SAVE, {"name": "Urgent", "query": "priority__exact=urgent"})

    blank = client.post(SAVE, {"name": "   ", "query": "priority__exact=high"})
    twice = client.post(SAVE, {"name": "URGENT", "query": "priority__exact=high"})

    assert any("Give the view a name" in m for m in messages_of(blank))
    assert any("already have a view called" in m for m in messages_of(twice))
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Urgent"]
    # another agent may use the same name
    client_for(team["teammate"]).post(SAVE, {"name": "urgent", "query": "priority__exact=urgent"})
    assert SavedView.objects.count() == 2


def test_saving_needs_a_post_with_a_csrf_token(team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(team["agent"])

    assert client.get(SAVE).status_code == 405
    assert client.post(SAVE, {"name": "x", "query": "view=mine"}).status_code == 403
    assert not SavedView.objects.exists()


def test_saving_views_is_rate_limited(team, monkeypatch):
    monkeypatch.setattr(inbox_admin, "VIEW_CHANGES", ratelimit.Limit(2, 60))
    client = client_for(team["agent"])

    statuses = [client.post(SAVE, {"name": f"v{i}", "query": "view=mine"}).status_code for i in range(3)]

    assert statuses == [302, 302, 429]
    assert SavedView.objects.count() == 2


def test_a_personal_view_limit_keeps_the_count_query_small(team, monkeypatch):
    monkeypatch.setattr(services, "PERSONAL_VIEWS_MAX", 2)
    for i in range(2):
        services.saved_view_create(owner=team["agent"], name=f"v{i}", query="view=mine")

    with pytest.raises(TicketRuleError, match="You have 2 views already"):
        services.saved_view_create(owner=team["agent"], name="one more", query="view=mine")


# --- sharing -----------------------------------------------------------------------------------------


def test_a_manager_shares_a_view_with_a_team_whose_agents_see_it(team, department):
    response = client_for(team["manager"]).post(
        SAVE, {"name": "Refund requests", "query": "view=open&q=refund", "department": department.pk}
    )

    assert response.status_code == 302
    view = SavedView.objects.get()
    assert (view.owner, view.department) == (team["manager"], department)
    assert saved_names(client_for(team["agent"])) == ["Refund requests"]
    assert saved_names(client_for(team["teammate"])) == ["Refund requests"]
    assert saved_names(client_for(team["outsider"])) == []


def test_an_agent_cannot_share_a_view(team, department):
    client = client_for(team["agent"])
    own = services.saved_view_create(owner=team["agent"], name="Mine", query="view=mine")

    created = client.post(SAVE, {"name": "Shared", "query": "view=open", "department": department.pk})
    shared = client.post(change_url(own), {"action": "share", "department": department.pk})

    assert any("Only managers share views" in m for m in messages_of(created))
    assert any("Only managers share views" in m for m in messages_of(shared))
    assert list(SavedView.objects.values_list("name", "department")) == [("Mine", None)]


def test_a_manager_shares_and_unshares_their_own_view(team, department):
    view = services.saved_view_create(owner=team["manager"], name="Billing backlog", query="view=open")
    client = client_for(team["manager"])

    client.post(change_url(view), {"action": "share", "department": department.pk})
    assert saved_names(client_for(team["agent"])) == ["Billing backlog"]

    client.post(change_url(view), {"action": "share", "department": ""})
    assert saved_names(client_for(team["agent"])) == []
    view.refresh_from_db()
    assert view.department is None


def test_sharing_with_a_team_that_does_not_exist_is_refused(team):
    view = services.saved_view_create(owner=team["manager"], name="Backlog", query="view=open")

    response = client_for(team["manager"]).post(change_url(view), {"action": "share", "department": "99999"})

    assert any("No such team" in m for m in messages_of(response))
    view.refresh_from_db()
    assert view.department is None


# --- renaming and deleting ---------------------------------------------------------------------------


def test_an_agent_renames_and_deletes_their_own_view(team):
    view = services.saved_view_create(owner=team["agent"], name="Old name", query="view=mine")
    client = client_for(team["agent"])

    renamed = client.post(change_url(view), {"action": "rename", "name": "New name"})
    view.refresh_from_db()
    assert (renamed.status_code, view.name) == (302, "New name")

    deleted = client.post(change_url(view), {"action": "delete"})
    assert deleted.status_code == 302
    assert not SavedView.objects.exists()


def test_an_agent_may_not_rename_or_delete_a_view_shared_with_their_team(team, department):
    view = services.saved_view_create(owner=team["manager"], name="Team view", query="view=open", department=department)
    client = client_for(team["agent"])

    renamed = client.post(change_url(view), {"action": "rename", "name": "Hijacked"})
    deleted = client.post(change_url(view), {"action": "delete"})

    assert (renamed.status_code, deleted.status_code) == (403, 403)
    view.refresh_from_db()
    assert view.name == "Team view"


def test_another_agents_personal_view_is_not_found(team):
    view = services.saved_view_create(owner=team["agent"], name="Private", query="view=mine")

    for user in (team["teammate"], team["outsider"], team["manager"]):
        response = client_for(user).post(change_url(view), {"action": "delete"})
        assert response.status_code == 404
    assert SavedView.objects.filter(pk=view.pk).exists()


def test_a_view_shared_with_another_team_is_not_found_by_its_outsiders(team, department):
    view = services.saved_view_create(owner=team["manager"], name="Team", query="view=open", department=department)

    response = client_for(team["outsider"]).post(change_url(view), {"action": "delete"})

    assert response.status_code == 404
    assert SavedView.objects.filter(pk=view.pk).exists()


def test_managers_delete_shared_views_even_of_another_manager(team, department):
    view = services.saved_view_create(owner=team["manager"], name="Team", query="view=open", department=department)

    response = client_for(team["other_manager"]).post(change_url(view), {"action": "delete"})

    assert response.status_code == 302
    assert not SavedView.objects.exists()


def test_changing_a_view_needs_a_post_a_known_action_and_a_csrf_token(team):
    view = services.saved_view_create(owner=team["agent"], name="Mine", query="view=mine")
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(team["agent"])

    assert client_for(team["agent"]).get(change_url(view)).status_code == 405
    assert client_for(team["agent"]).post(change_url(view), {"action": "explode"}).status_code == 400
    assert csrf_client.post(change_url(view), {"action": "delete"}).status_code == 403
    assert SavedView.objects.filter(pk=view.pk).exists()


def test_a_saved_view_is_selected_when_the_list_shows_exactly_its_filters(team):
    view = services.saved_view_create(owner=team["agent"], name="Urgent", query="priority__exact=urgent&view=open")
    client = client_for(team["agent"])

    selected = client.get(CHANGELIST, {"view": "open", "priority__exact": "urgent", "p": "1"}).context["inbox"]
    other = client.get(CHANGELIST, {"view": "open"}).context["inbox"]

    assert [i.label for i in selected["saved"] if i.selected] == ["Urgent"]
    assert not [i for i in selected["views"] if i.selected]
    assert [i.label for i in other["saved"] if i.selected] == []
    assert [i.key for i in other["views"] if i.selected] == ["open"]
    assert view.query == "view=open&priority__exact=urgent"
