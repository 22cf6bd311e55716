"""Console workflows through Django's test client on the real database and Redis: a ticket opened for a
customer from the console, bulk assignment and priority, the managers' CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from tickets import events, roles, services
from tickets.admin import workflows
from tickets.models import Customer, Ticket, TicketEvent
from tickets.tests.factories import (
    CustomerFactory,
    DepartmentFactory,
    UserFactory,
    make_agent,
    make_manager,
    make_ticket,
)

pytestmark = pytest.mark.django_db

NEW_TICKET = reverse("admin:tickets_ticket_add")
CHANGELIST = reverse("admin:tickets_ticket_changelist") + "?view=all"  # the inbox opens on Mine, without closed tickets
EXPORT = reverse("admin:tickets_ticket_export")


def change_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def flashed(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def published(monkeypatch):
    """What other apps hear (webhooks, Slack, metrics): every event published, once committed."""
    heard: list[tuple[str, dict]] = []
    monkeypatch.setattr(events, "_subscribers", [lambda kind, **payload: heard.append((kind, payload))])
    return heard


def new_ticket_form(department, **overrides) -> dict:
    return {
        "channel": "phone",
        "customer_email": "grace@example.com",
        "customer_name": "Grace Hopper",
        "subject": "Cannot sign in after the update",
        "body": "She called: since the update the app says her password is wrong.",
        "department": department.pk,
        "priority": "high",
        "assign_to_me": "on",
        **overrides,
    }


# --- a ticket opened for a customer ------------------------------------------------------------------


def test_agents_may_open_tickets_the_roles_say_so():
    assert Group.objects.get(name=roles.AGENTS).permissions.filter(codename="add_ticket").exists()


def test_the_new_ticket_page_offers_the_console_channels_and_only_the_agents_queues(
    agent, department, other_department
):
    response = logged_in(agent).get(NEW_TICKET)

    assert response.status_code == 200
    form = response.context["form"]
    assert [value for value, _ in form.fields["channel"].choices] == list(services.CONSOLE_CHANNELS)
    assert list(form.fields["department"].queryset) == [department]
    assert "api" not in dict(form.fields["channel"].choices)


def test_a_phone_call_becomes_a_ticket_through_the_channels_service(
    agent, department, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(agent).post(NEW_TICKET, new_ticket_form(department))

    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == change_url(ticket)
    assert (ticket.channel, ticket.opened_by, ticket.assignee, ticket.department, ticket.priority) == (
        "phone",
        agent,
        agent,
        department,
        "high",
    )
    assert (ticket.customer.email, ticket.customer.name) == ("grace@example.com", "Grace Hopper")
    [first] = ticket.messages.all()
    assert (first.seq, first.author_kind, first.body) == (1, "customer", new_ticket_form(department)["body"])
    # the queue's SLA for a high-priority ticket: 60 minutes to respond, 8 hours to resolve, around the clock
    assert ticket.first_response_due_at - ticket.created_at == dt.timedelta(minutes=60)
    assert ticket.resolution_due_at - ticket.created_at == dt.timedelta(hours=8)
    assert list(ticket.events.order_by("pk").values_list("kind", "actor", "actor_kind", "to_value")) == [
        ("created", agent.pk, "agent", "phone"),
        ("assigned", agent.pk, "agent", agent.get_username()),
    ]
    assert [kind for kind, _ in published] == [events.TICKET_CREATED, events.TICKET_ASSIGNED]


@pytest.mark.parametrize("channel", services.CONSOLE_CHANNELS)
def test_every_console_channel_can_be_chosen(agent, department, channel):
    response = logged_in(agent).post(NEW_TICKET, new_ticket_form(department, channel=channel))

    assert response.status_code == 302
    assert Ticket.objects.get().channel == channel


def test_an_existing_customer_is_found_by_email_whatever_its_case(agent, department):
    known = CustomerFactory(email="Grace@Example.com", name="Grace B. Hopper")

    logged_in(agent).post(NEW_TICKET, new_ticket_form(department, customer_email="grace@example.COM"))

    assert Ticket.objects.get().customer == known
    assert Customer.objects.count() == 1
    known.refresh_from_db()
    assert known.name == "Grace B. Hopper"  # what the agent typed does not overwrite the record


def test_a_walk_in_may_give_only_a_name_and_stay_unassigned(agent, department):
    form = new_ticket_form(department, channel="in_person", customer_email="", assign_to_me="")
    del form["assign_to_me"]

    response = logged_in(agent).post(NEW_TICKET, form)

    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert (ticket.channel, ticket.customer.email, ticket.customer.name, ticket.assignee) == (
        "in_person",
        "",
        "Grace Hopper",
        None,
    )


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        ({"body": "  "}, "This field is required."),
        ({"customer_email": "", "customer_name": ""}, "Give the customer&#x27;s email address or name."),
        ({"channel": "email", "customer_email": ""}, "An email ticket needs the customer&#x27;s email address"),
        ({"customer_email": "not-an-address"}, "Enter a valid email address."),
        ({"channel": "api"}, "Select a valid choice. api is not one of the available choices."),
        ({"priority": "whenever"}, "Select a valid choice."),
        ({"body": "x" * 10_001}, "Ensure this value has at most 10000 characters"),
    ],
)
def test_bad_input_is_shown_on_the_form_and_nothing_is_stored(agent, department, overrides, shown):
    response = logged_in(agent).post(NEW_TICKET, new_ticket_form(department, **overrides))

    html = response.content.decode()
    assert response.status_code == 400
    assert shown in html
    if "body" not in overrides:
        assert "She called: since the update" in html  # the agent's notes are still in the form
    assert Ticket.objects.count() == 0


def test_a_queue_the_agent_does_not_work_is_refused(agent, other_department):
    response = logged_in(agent).post(NEW_TICKET, new_ticket_form(other_department))

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert Ticket.objects.count() == 0


def test_the_service_refuses_a_queue_outside_the_agents_own(agent, other_department):
    with pytest.raises(services.TicketRuleError, match="You do not work the"):
        services.ticket_open_for_customer(
            actor=agent, body="Hello", channel="phone", department=other_department, customer_name="Grace"
        )
    assert Ticket.objects.count() == 0


def test_staff_without_a_role_may_not_open_tickets(department):
    staff = UserFactory(is_staff=True)

    response = logged_in(staff).post(NEW_TICKET, new_ticket_form(department))

    assert response.status_code == 403
    assert Ticket.objects.count() == 0


def test_opening_a_ticket_needs_the_csrf_token(agent, department):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)

    response = client.post(NEW_TICKET, new_ticket_form(department))

    assert response.status_code == 403
    assert Ticket.objects.count() == 0


def test_opening_tickets_is_rate_limited_per_agent(agent, department, monkeypatch):
    monkeypatch.setattr(workflows, "NEW_TICKET_RATE", "2/600")
    client = logged_in(agent)
    codes = [client.post(NEW_TICKET, new_ticket_form(department, subject=f"Call {n}")).status_code for n in range(3)]

    assert codes == [302, 302, 429]
    assert Ticket.objects.count() == 2


def test_a_customer_name_is_escaped_in_the_console(agent, department):
    name = '<img src=x onerror="alert(1)">Eve'
    response = logged_in(agent).post(NEW_TICKET, new_ticket_form(department, customer_name=name), follow=True)

    html = response.content.decode()
    assert '<img src=x onerror="alert(1)">' not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;Eve" in html


def test_an_email_ticket_opened_by_hand_answers_the_customer_by_email(agent, department, email_settings, mailoutbox):
    from tickets.email.outbound import email_reply_send

    logged_in(agent).post(NEW_TICKET, new_ticket_form(department, channel="email"))
    ticket = Ticket.objects.get()
    reply = services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="We reset it.")

    assert email_reply_send(message_id=reply.pk) == "sent"
    [mail] = mailoutbox
    assert mail.to == ["grace@example.com"]
    assert ticket.reference in mail.subject


# --- bulk assignment and priority ----------------------------------------------------------------------


def action(name: str, tickets, **extra) -> dict:
    return {"action": name, "_selected_action": [t.pk for t in tickets], "select_across": "0", **extra}


@pytest.fixture
def queues():
    """Two queues with an agent each, a manager who sees every queue, and two tickets per queue."""
    billing, tech = DepartmentFactory(name="Billing"), DepartmentFactory(name="Technical")
    return {
        "billing": billing,
        "tech": tech,
        "bill": make_agent(billing, username="bill"),
        "tess": make_agent(tech, username="tess"),
        "manager": make_manager(username="mona"),
        "billing_tickets": [make_ticket(department=billing) for _ in range(2)],
        "tech_tickets": [make_ticket(department=tech) for _ in range(2)],
    }


def test_assign_to_offers_only_agents_who_work_every_selected_queue(queues):
    client = logged_in(queues["manager"])

    page = client.post(CHANGELIST, action("assign_to", queues["billing_tickets"], index="0"))
    mixed = client.post(CHANGELIST, action("assign_to", queues["billing_tickets"] + queues["tech_tickets"], index="0"))

    assert page.status_code == 200
    assert set(page.context["form"].fields["assignee"].queryset) == {queues["bill"], queues["manager"]}
    assert set(mixed.context["form"].fields["assignee"].queryset) == {queues["manager"]}
    assert not Ticket.objects.exclude(assignee=None).exists()


def test_assign_to_assigns_each_ticket_through_the_service(queues):
    tickets = queues["billing_tickets"]

    response = logged_in(queues["manager"]).post(
        CHANGELIST, action("assign_to", tickets, apply="1", assignee=queues["bill"].pk), follow=True
    )

    assert set(Ticket.objects.filter(pk__in=[t.pk for t in tickets]).values_list("assignee", flat=True)) == {
        queues["bill"].pk
    }
    assert TicketEvent.objects.filter(kind="assigned", actor=queues["manager"], to_value="bill").count() == 2
    assert any("Assigned to bill: 2 tickets" in m for m in flashed(response))


def test_an_agent_outside_the_queue_cannot_be_assigned_even_by_a_forged_form(queues):
    tickets = queues["billing_tickets"]

    response = logged_in(queues["manager"]).post(
        CHANGELIST, action("assign_to", tickets, apply="1", assignee=queues["tess"].pk)
    )

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Ticket.objects.exclude(assignee=None).exists()
    assert not TicketEvent.objects.filter(kind="assigned").exists()


def test_assigning_others_needs_the_managers_right(queues):
    tickets = queues["billing_tickets"]
    client = logged_in(queues["bill"])

    listed = client.get(CHANGELIST)
    response = client.post(CHANGELIST, action("assign_to", tickets, apply="1", assignee=queues["bill"].pk), follow=True)

    assert "assign_to" not in dict(listed.context["action_form"].fields["action"].choices)
    assert "No action selected." in flashed(response)
    assert not Ticket.objects.exclude(assignee=None).exists()


def test_a_bulk_change_reports_each_refused_ticket_and_applies_the_rest(queues):
    first, second = queues["billing_tickets"]
    services.ticket_close(ticket=second)

    response = logged_in(queues["manager"]).post(
        CHANGELIST, action("assign_to", [first, second], apply="1", assignee=queues["bill"].pk), follow=True
    )

    messages = flashed(response)
    assert f"Assigned to bill: 1 ticket ({first.reference})." in messages
    assert f"{second.reference}: {second.reference} is closed." in messages
    assert list(
        Ticket.objects.filter(pk__in=[first.pk, second.pk]).order_by("pk").values_list("assignee", flat=True)
    ) == [
        queues["bill"].pk,
        None,
    ]


def test_bulk_resolve_goes_through_the_state_machine_ticket_by_ticket(queues):
    first, second = queues["billing_tickets"]
    services.ticket_close(ticket=second)

    response = logged_in(queues["bill"]).post(CHANGELIST, action("resolve", [first, second], index="0"), follow=True)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("resolved", "closed")
    assert first.events.filter(kind="status_changed", to_value="resolved", actor=queues["bill"]).exists()
    assert f"{second.reference}: {second.reference} cannot go from closed to resolved." in flashed(response)


def test_bulk_priority_is_a_triage_change_with_its_event_and_sla(queues):
    tickets = queues["tech_tickets"]
    before = [t.first_response_due_at for t in tickets]

    response = logged_in(queues["tess"]).post(
        CHANGELIST, action("set_priority", tickets, apply="1", priority="urgent"), follow=True
    )

    after = Ticket.objects.filter(pk__in=[t.pk for t in tickets]).order_by("pk")
    assert [t.priority for t in after] == ["urgent", "urgent"]
    assert all(a.first_response_due_at < b for a, b in zip(after, before, strict=True))  # urgent: sooner
    assert TicketEvent.objects.filter(kind="priority_changed", actor=queues["tess"], to_value="urgent").count() == 2
    assert any("Priority set to urgent: 2 tickets" in m for m in flashed(response))


def test_an_agent_cannot_bulk_change_tickets_outside_their_queues(queues):
    client = logged_in(queues["tess"])

    client.post(CHANGELIST, action("set_priority", queues["billing_tickets"], apply="1", priority="urgent"))

    assert set(Ticket.objects.filter(department=queues["billing"]).values_list("priority", flat=True)) == {"normal"}


# --- the managers' CSV export -----------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.reader(io.StringIO(b"".join(stream(response)).decode())))


def stream(response) -> list[bytes]:
    """The response's chunks as an ASGI server would send them (the export streams an async iterator)."""

    async def collect():
        return [chunk async for chunk in response.streaming_content]

    return async_to_sync(collect)()


def test_the_export_has_the_lists_columns_for_managers(queues):
    ticket = queues["billing_tickets"][0]
    services.ticket_assign(ticket=ticket, assignee=queues["bill"], actor=queues["manager"])

    response = logged_in(queues["manager"]).get(EXPORT + f"?q={ticket.reference}")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="supportflow-tickets-')
    header, row = read_csv(response)
    assert header == [str(name) for name in workflows.EXPORT_HEADER]
    assert header[:3] == ["Reference", "Subject", "Customer"]
    assert row[:9] == [
        ticket.reference,
        ticket.subject,
        ticket.customer.name,
        ticket.customer.email,
        "new",
        "normal",
        "Billing",
        "bill",
        "chat",
    ]
    assert row[9] == ticket.created_at.isoformat(timespec="seconds")
    assert row[10:] == ["", "", "no", ""]


def test_the_export_follows_the_lists_filters(queues):
    services.ticket_resolve(ticket=queues["tech_tickets"][0])

    response = logged_in(queues["manager"]).get(
        EXPORT + f"?department__id__exact={queues['tech'].pk}&status__exact=new"
    )

    rows = read_csv(response)[1:]
    assert [r[0] for r in rows] == [queues["tech_tickets"][1].reference]


def test_agents_may_not_export(queues):
    client = logged_in(queues["bill"])

    response = client.get(EXPORT)
    listed = client.get(CHANGELIST)

    assert response.status_code == 403
    assert EXPORT not in listed.content.decode()


def test_spreadsheet_formulas_are_neutralised(queues):
    customer = CustomerFactory(name="=cmd|' /C calc'!A0", email="eve@example.com")
    make_ticket(department=queues["billing"], customer=customer, subject="+SUM(A1:A9)")
    make_ticket(department=queues["billing"], customer=customer, subject='@HYPERLINK("http://x")')
    make_ticket(department=queues["billing"], customer=customer, subject="-2+3")

    rows = read_csv(logged_in(queues["manager"]).get(EXPORT + "?q=eve%40example.com"))[1:]

    assert sorted(r[1] for r in rows) == ["'+SUM(A1:A9)", "'-2+3", '\'@HYPERLINK("http://x")']
    assert {r[2] for r in rows} == {"'=cmd|' /C calc'!A0"}


def test_the_export_streams_in_chunks_from_a_cursor(queues, monkeypatch):
    monkeypatch.setattr(workflows, "EXPORT_CHUNK", 2)
    make_ticket(department=queues["billing"])  # 5 tickets in all: chunks of 2, 2 and 1

    chunks = stream(logged_in(queues["manager"]).get(EXPORT))

    assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 2, 2, 1]


def test_a_bad_filter_is_a_400_not_a_500(queues):
    response = logged_in(queues["manager"]).get(EXPORT + "?no_such_field=1")

    assert response.status_code == 400


def test_exports_are_rate_limited(queues, monkeypatch):
    monkeypatch.setattr(workflows, "EXPORT_RATE", "1/600")
    client = logged_in(queues["manager"])

    assert [client.get(EXPORT).status_code for _ in range(2)] == [200, 429]


def test_the_ticket_page_offers_no_save_and_add_another(agent_client, ticket):
    response = agent_client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))

    assert response.status_code == 200
    assert 'name="_addanother"' not in response.content.decode()
