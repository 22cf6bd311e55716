"""The benchmark-only bare Django view: never routed unless ``BENCH_ENDPOINTS`` is on."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import RequestFactory
from django.urls import Resolver404, resolve

from supportflow.bench_views import bench_hello


def test_the_bare_view_is_not_routed_by_default(settings):
    assert settings.BENCH_ENDPOINTS is False
    with pytest.raises(Resolver404):
        resolve("/bench/hello/")


def test_the_bare_view_answers_hello_without_the_database():
    response = bench_hello(RequestFactory().get("/bench/hello/"))  # no db mark: a query would fail the test
    assert (response.status_code, response.content) == (200, b"hello")


@pytest.mark.django_db
def test_the_ticket_floor_is_the_api_first_page_as_one_statement(client, django_assert_num_queries):
    """The floor must send the API's own page query for that user (scope included), or the ratio the
    HTTP benchmark reports against it would mean nothing."""
    from supportflow.bench_views import bench_ticket_floor
    from tickets.tests.factories import DepartmentFactory, make_agent, make_ticket

    mine, other = DepartmentFactory(), DepartmentFactory()
    agent = make_agent(mine, username="floor-agent")
    visible = [make_ticket(department=mine) for _ in range(3)]
    make_ticket(department=other)
    request = RequestFactory().get("/bench/ticket-floor/", {"user": agent.username})
    bench_ticket_floor(request)  # compiles the statement once per user
    with django_assert_num_queries(1):
        response = bench_ticket_floor(request)
    body = json.loads(response.content)
    assert [row["reference"] for row in body["results"]] == [t.reference for t in reversed(visible)]
    assert {row["_bounded_count"] for row in body["results"]} == {3}
    unknown = bench_ticket_floor(RequestFactory().get("/bench/ticket-floor/", {"user": "nobody"}))
    assert unknown.status_code == 404
    # prepared on the server: the same rows, and PostgreSQL holds the statement for the next request
    prepared = RequestFactory().get("/bench/ticket-floor/", {"user": agent.username, "prepared": "1"})
    assert json.loads(bench_ticket_floor(prepared).content) == body
    assert json.loads(bench_ticket_floor(prepared).content) == body
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%_bounded_count%"])
        assert cursor.fetchone()[0] == 1


@pytest.mark.django_db
def test_the_api_floor_is_the_apis_framework_without_a_query(django_assert_num_queries):
    """The floor under every API endpoint: the same key check, scope permission and renderer as the API
    (one statement: the key), and the same refusals; its page is empty."""
    from rest_framework.test import APIRequestFactory

    from supportflow.api.keys import api_key_create
    from supportflow.bench_views import BenchApiFloor
    from tickets.tests.factories import DepartmentFactory, make_agent

    agent = make_agent(DepartmentFactory(), username="floor-agent")
    _, secret = api_key_create(name="floor", user=agent, scopes=["tickets:read"])
    view = BenchApiFloor.as_view()
    factory = APIRequestFactory()
    view(factory.get("/bench/api-floor/", HTTP_AUTHORIZATION=f"Bearer {secret}"))  # the first use is recorded
    with django_assert_num_queries(1):
        response = view(factory.get("/bench/api-floor/", HTTP_AUTHORIZATION=f"Bearer {secret}"))
        response.render()
    assert response.status_code == 200
    assert json.loads(response.content) == {
        "count": 0,
        "count_is_exact": True,
        "next": None,
        "previous": None,
        "results": [],
    }
    assert view(factory.get("/bench/api-floor/")).status_code in (401, 403)
    _, wrong_scope = api_key_create(name="floor-write", user=agent, scopes=["kb:read"])
    assert view(factory.get("/bench/api-floor/", HTTP_AUTHORIZATION=f"Bearer {wrong_scope}")).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_the_store_echo_stores_each_message_before_it_echoes():
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.db import connection
    from django.urls import path

    from supportflow.consumers import StoreEchoConsumer

    app = URLRouter([path("ws/bench/store-echo/<str:room>/", StoreEchoConsumer.as_asgi())])

    async def exchange() -> str:
        listener = WebsocketCommunicator(app, "/ws/bench/store-echo/r1/")
        sender = WebsocketCommunicator(app, "/ws/bench/store-echo/r1/")
        assert (await listener.connect())[0]
        assert (await sender.connect())[0]
        await sender.send_to(text_data="hello floor")
        got = await listener.receive_from(timeout=10)
        await listener.disconnect()
        await sender.disconnect()
        return got

    assert async_to_sync(exchange)() == "hello floor"
    with connection.cursor() as cursor:
        cursor.execute("SELECT room, body FROM bench_echo_message")
        assert cursor.fetchall() == [("r1", "hello floor")]
