"""``/api/v1/tickets/{reference}/csat/``: an integration records the customer's rating and reads it back —
with an API key (scopes), on tickets the key's user may see, through ``ticket_record_csat``."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from supportflow.api.keys import api_key_create
from tickets import services
from tickets.models import EmailRecord, Ticket, TicketEvent
from tickets.tests.factories import DepartmentFactory, make_agent, make_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    billing, tech = DepartmentFactory(name="Billing", slug="billing"), DepartmentFactory(name="Tech", slug="tech")
    agent = make_agent(billing, username="alice")
    mine = make_ticket(department=billing, subject="Invoice wrong")
    theirs = make_ticket(department=tech, subject="Sync broken")
    for ticket in (mine, theirs):
        services.ticket_resolve(ticket=ticket)
    return {"agent": agent, "mine": mine, "theirs": theirs}


def client_for(user, scopes=("tickets:read", "tickets:write")) -> APIClient:
    _, secret = api_key_create(name="survey tool", user=user, scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def url(ticket: Ticket) -> str:
    return f"/api/v1/tickets/{ticket.reference}/csat/"


def test_an_integration_records_the_rating_and_reads_it_back(world):
    client = client_for(world["agent"])
    assert client.get(url(world["mine"])).json() == {
        "score": None, "comment": "", "rated_at": None, "survey_sent_at": None,
    }  # fmt: skip
    response = client.post(url(world["mine"]), {"score": 5, "comment": "Great help"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["score"], body["comment"]) == (5, "Great help")
    assert body["rated_at"]
    assert client.get(url(world["mine"])).json() == body
    ticket = Ticket.objects.get(pk=world["mine"].pk)
    assert (ticket.csat_score, ticket.csat_comment) == (5, "Great help")
    event = TicketEvent.objects.get(ticket=ticket, kind="csat_recorded")
    assert (event.actor, event.actor_kind) == (world["agent"], "customer")  # relayed by the key's user
    assert client.get(f"/api/v1/tickets/{ticket.reference}/").json()["csat_score"] == 5


@pytest.mark.parametrize(
    ("data", "field"),
    [({"score": 6}, "score"), ({"score": 0}, "score"), ({"score": "five"}, "score"), ({}, "score"),
     ({"score": True}, "score"), ({"score": 3, "comment": "x" * 2001}, "comment"),
     ({"score": 3, "comment": "nul\x00byte"}, "NUL character")],
)  # fmt: skip
def test_a_bad_rating_is_a_400_naming_the_problem_and_records_nothing(world, data, field):
    response = client_for(world["agent"]).post(url(world["mine"]), data, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error.get("fields", error["message"])
    assert Ticket.objects.get(pk=world["mine"].pk).csat_score is None


def test_another_departments_ticket_is_a_404_and_unchanged(world):
    response = client_for(world["agent"]).post(url(world["theirs"]), {"score": 1}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Ticket.objects.get(pk=world["theirs"].pk).csat_score is None
    assert client_for(world["agent"]).get(url(world["theirs"])).status_code == 404


def test_recording_needs_the_write_scope_and_a_key_not_a_console_session(world):
    read_only = client_for(world["agent"], scopes=["tickets:read"])
    assert read_only.get(url(world["mine"])).status_code == 200
    refused = read_only.post(url(world["mine"]), {"score": 4}, format="json")
    assert refused.status_code == 403
    assert "tickets:write" in refused.json()["error"]["message"]
    console = APIClient()
    console.force_login(world["agent"])
    session = console.post(url(world["mine"]), {"score": 5}, format="json")
    assert session.status_code == 403
    assert "API key" in session.json()["error"]["message"]
    assert Ticket.objects.get(pk=world["mine"].pk).csat_score is None


def test_an_open_ticket_cannot_be_rated_yet(world):
    open_ticket = make_ticket(department=world["mine"].department)
    response = client_for(world["agent"]).post(url(open_ticket), {"score": 4}, format="json")
    assert response.status_code == 409
    assert "once it is resolved" in response.json()["error"]["message"]


def test_the_survey_sent_by_email_shows_in_the_api(world):
    ticket = world["mine"]
    EmailRecord.objects.create(
        msgid="<survey@help.example.com>", direction="out", status="sent", ticket=ticket, key=f"csat:{ticket.pk}",
        sent_at=timezone.now(),
    )  # fmt: skip
    assert client_for(world["agent"]).get(url(ticket)).json()["survey_sent_at"] is not None


def test_the_endpoint_is_in_the_openapi_schema(client):
    paths = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    operations = paths["/api/v1/tickets/{reference}/csat/"]
    assert set(operations) >= {"get", "post"}
    schema = operations["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema.endswith("/CsatCreate")
