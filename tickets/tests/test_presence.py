"""Collision presence: the console's presence sockets through the full ASGI stack (origin check, session
auth, routing), the real Redis channel layer and presence in the real Redis."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
import redis
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from supportflow import ratelimit
from supportflow.asgi import application
from tickets import consumers_console, presence
from tickets.tests.factories import DepartmentFactory, UserFactory, make_agent, make_ticket
from tickets.tests.test_consumers import ORIGIN, run, subscribers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_channel_layer")]


def named_agent(department, first: str, last: str = ""):
    user = make_agent(department)
    user.first_name, user.last_name = first, last
    user.save()
    return user


def console_socket(user, path: str) -> WebsocketCommunicator:
    """Build in sync code (it logs the user in), then connect inside the scenario."""
    headers = [ORIGIN]
    if user is not None:
        browser = Client()
        browser.force_login(user)
        headers.append((b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def ticket_socket(user, ticket) -> WebsocketCommunicator:
    return console_socket(user, f"/ws/agent/presence/tickets/{ticket.pk}/")


def list_socket(user) -> WebsocketCommunicator:
    return console_socket(user, "/ws/agent/presence/")


def shown(frame: str) -> list[str]:
    """The names a viewers fragment lists."""
    return re.findall(r'<span class="sf-viewer-name">([^<]*)</span>', frame)


def row_initials(frame: str, ticket) -> list[str]:
    assert f'id="sf-row-viewers-{ticket.pk}"' in frame, frame
    return re.findall(r'<span class="sf-avatar sf-avatar-sm[^"]*"[^>]*>([^<]*)</span>', frame)


async def connect(*sockets: WebsocketCommunicator) -> None:
    for ws in sockets:
        connected, code = await ws.connect(timeout=5)
        assert connected, code


def raw_store() -> redis.Redis:
    return redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])


@pytest.fixture
def fast_beat(monkeypatch):
    """Consumers beat every 50 ms instead of every 10 s, so an expiry is noticed without waiting."""
    monkeypatch.setattr(presence, "HEARTBEAT_SECONDS", 0.05)


def left_behind(ticket, user) -> None:
    """An entry whose web process died: nobody will beat it or say it left."""
    presence.viewer_touch(
        ticket_id=ticket.pk, user_id=user.pk, connection="dead-process", name=presence.display_name(user)
    )


def expire_now(ticket, user) -> None:
    """Rather than wait TTL_SECONDS, the user's entries are made to expire now."""
    store = raw_store()
    key = f"presence:ticket:{ticket.pk}"
    for member in store.zrange(key, 0, -1):
        if member.decode().startswith(f"{user.pk}:"):
            store.zadd(key, {member: time.time() - 1}, xx=True)


async def next_typing(layer, listener: str) -> dict:
    """The next typing event said to a ticket's presence group (viewer lists in flight are skipped)."""
    while (event := await layer.receive(listener))["type"] != "presence.typing":
        pass
    return event


@pytest.fixture
def queue():
    return DepartmentFactory()


@pytest.fixture
def ticket(queue):
    return make_ticket(department=queue, body="My sync is stuck")


@pytest.fixture
def alice(queue):
    return named_agent(queue, "Alice", "Archer")


@pytest.fixture
def bob(queue):
    return named_agent(queue, "Bob", "Baker")


# --- who may join ------------------------------------------------------------------------------------


OUTSIDERS = [
    pytest.param(lambda: None, id="anonymous"),
    pytest.param(lambda: UserFactory(is_staff=False), id="not-staff"),
    pytest.param(lambda: make_agent(DepartmentFactory()), id="agent-of-another-queue"),
]


@pytest.mark.parametrize("outsider", OUTSIDERS)
def test_the_ticket_socket_refuses_users_who_may_not_see_the_ticket(ticket, outsider):
    ws = ticket_socket(outsider(), ticket)

    async def scenario():
        assert await ws.connect(timeout=5) == (False, 4403)
        assert await subscribers(presence.group(ticket.pk)) == 0

    run(scenario)
    assert presence.viewers_of([ticket.pk])[ticket.pk] == []


def test_a_foreign_origin_is_refused(ticket, alice):
    ws = ticket_socket(alice, ticket)
    ws.scope["headers"] = [h for h in ws.scope["headers"] if h[0] != b"origin"] + [(b"origin", b"http://evil.example")]

    async def scenario():
        assert (await ws.connect(timeout=5))[0] is False

    run(scenario)
    assert presence.viewers_of([ticket.pk])[ticket.pk] == []


@pytest.mark.parametrize("outsider", OUTSIDERS[:2])
def test_the_list_socket_refuses_users_who_may_not_view_tickets(outsider):
    ws = list_socket(outsider())

    async def scenario():
        assert await ws.connect(timeout=5) == (False, 4403)

    run(scenario)


# --- viewers -------------------------------------------------------------------------------------------


def test_two_agents_see_each_other_come_and_go(ticket, alice, bob):
    a, b = ticket_socket(alice, ticket), ticket_socket(bob, ticket)

    async def scenario():
        await connect(a)
        assert shown(await a.receive_from(timeout=3)) == []  # alone: nobody else listed
        await connect(b)
        assert shown(await a.receive_from(timeout=3)) == ["Bob Baker"]
        frame = await b.receive_from(timeout=3)
        assert shown(frame) == ["Alice Archer"]
        assert '<span class="sf-avatar sf-avatar-' in frame
        assert ">AA</span>" in frame
        await b.disconnect()
        assert shown(await a.receive_from(timeout=3)) == []
        await a.disconnect()

    run(scenario)
    assert presence.viewers_of([ticket.pk])[ticket.pk] == []


def test_several_tabs_of_one_agent_count_once(ticket, queue, alice, bob):
    carol = named_agent(queue, "Carol")
    a, b1, b2, c = (ticket_socket(alice, ticket), ticket_socket(bob, ticket), ticket_socket(bob, ticket),
                    ticket_socket(carol, ticket))  # fmt: skip

    async def scenario():
        await connect(a)
        await a.receive_from(timeout=3)
        await connect(b1)
        assert shown(await a.receive_from(timeout=3)) == ["Bob Baker"]
        await connect(b2)  # Bob's second tab changes nothing for Alice: no frame
        await b2.receive_from(timeout=3)
        await b1.disconnect()  # one of Bob's tabs closes: he is still here
        await connect(c)
        # Alice's next frame is Carol's arrival, with Bob still listed once: no "Bob left" came before it.
        assert shown(await a.receive_from(timeout=3)) == ["Bob Baker", "Carol"]
        await b2.disconnect()
        assert shown(await a.receive_from(timeout=3)) == ["Carol"]
        await a.disconnect()
        await c.disconnect()

    run(scenario)
    assert presence.viewers_of([ticket.pk])[ticket.pk] == []


@pytest.mark.usefixtures("fast_beat")
def test_a_viewer_whose_server_died_disappears_once_the_entry_expired(ticket, alice, bob):
    a = ticket_socket(alice, ticket)

    async def scenario():
        await connect(a)
        assert shown(await a.receive_from(timeout=3)) == []
        left_behind(ticket, bob)
        assert shown(await a.receive_from(timeout=3)) == ["Bob Baker"]  # Alice's next beat reads him
        expire_now(ticket, bob)
        assert shown(await a.receive_from(timeout=3)) == []  # and the one after prunes him and says so
        await a.disconnect()

    run(scenario)


@pytest.mark.usefixtures("fast_beat")
def test_an_open_socket_is_kept_listed_by_the_server_without_any_frame_from_the_page(ticket, alice):
    """A background tab's timers may fire once a minute: its presence must not depend on them."""
    a = ticket_socket(alice, ticket)
    store, key = raw_store(), f"presence:ticket:{ticket.pk}"

    async def scenario():
        await connect(a)
        await a.receive_from(timeout=3)
        (member, first_expiry), *_ = store.zrange(key, 0, -1, withscores=True)
        for _ in range(100):  # wait for the next beat, without a word from the page
            await asyncio.sleep(0.05)
            if store.zscore(key, member) > first_expiry:
                break
        assert store.zscore(key, member) > first_expiry
        await a.disconnect()

    run(scenario)


def test_a_viewer_left_behind_by_a_crashed_server_is_never_shown(ticket, alice):
    presence.viewer_touch(
        ticket_id=ticket.pk,
        user_id=999_999,
        connection="gone",
        name="Ghost",
        now=time.time() - presence.TTL_SECONDS - 1,
    )
    a = ticket_socket(alice, ticket)

    async def scenario():
        await connect(a)
        assert shown(await a.receive_from(timeout=3)) == []
        members = raw_store().zrange(f"presence:ticket:{ticket.pk}", 0, -1)
        assert [m.decode().split(":")[0] for m in members] == [str(alice.pk)]  # pruned at Alice's join
        await a.disconnect()

    run(scenario)
    assert raw_store().exists(f"presence:ticket:{ticket.pk}") == 0


def test_names_are_escaped(ticket, queue, alice):
    mallory = named_agent(queue, '<img src=x onerror="alert(1)">')
    a, m = ticket_socket(alice, ticket), ticket_socket(mallory, ticket)

    async def scenario():
        await connect(a)
        await a.receive_from(timeout=3)
        await connect(m)
        frame = await a.receive_from(timeout=3)
        assert "<img" not in frame
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in frame
        await m.send_json_to({"type": "typing", "kind": "reply"})
        typing = await a.receive_from(timeout=3)
        assert "<img" not in typing
        await a.disconnect()
        await m.disconnect()

    run(scenario)


# --- typing -----------------------------------------------------------------------------------------


def test_typing_is_shown_to_the_others_with_the_kind_and_never_the_text(ticket, alice, bob):
    a, b = ticket_socket(alice, ticket), ticket_socket(bob, ticket)
    layer = get_channel_layer()

    async def scenario():
        await connect(a, b)
        await a.receive_from(timeout=3)
        await a.receive_from(timeout=3)  # Bob arrived
        listener = await layer.new_channel()  # hears everything said to the ticket's presence group
        await layer.group_add(presence.group(ticket.pk), listener)

        await b.send_json_to({"type": "typing", "kind": "reply", "body": "SECRET DRAFT", "text": "SECRET DRAFT"})
        event = await layer.receive(listener)
        assert event == {
            "type": "presence.typing",
            "ticket": ticket.pk,
            "user": bob.pk,
            "name": "Bob Baker",
            "kind": "reply",
        }
        frame = await a.receive_from(timeout=3)
        assert "Bob Baker is typing a reply…" in frame
        assert f'id="sf-typing-{bob.pk}"' in frame
        assert 'data-presence-expires="6000"' in frame
        assert "SECRET" not in frame

        await b.send_json_to({"type": "typing", "kind": "reply"})  # within the throttle: dropped
        await b.send_json_to({"type": "typing", "kind": "<script>"})  # not a kind: dropped
        await b.send_json_to({"type": "typing", "kind": "note"})
        assert (await layer.receive(listener))["kind"] == "note"
        assert "Bob Baker is writing an internal note…" in await a.receive_from(timeout=3)
        await b.send_json_to({"type": "typing", "kind": "idle"})
        assert (await layer.receive(listener))["kind"] == "idle"
        idle = await a.receive_from(timeout=3)
        assert re.search(rf'<span id="sf-typing-{bob.pk}" [^>]*></span>', idle), idle
        assert "data-presence-expires" not in idle

        await layer.group_discard(presence.group(ticket.pk), listener)
        await a.disconnect()
        await b.disconnect()

    run(scenario)


def test_typing_signals_are_limited_per_agent_over_all_their_tabs(ticket, alice, bob, monkeypatch):
    monkeypatch.setattr(consumers_console, "TYPING_LIMIT", ratelimit.Limit(1, 60))
    bob_1, bob_2, a = ticket_socket(bob, ticket), ticket_socket(bob, ticket), ticket_socket(alice, ticket)
    layer = get_channel_layer()

    async def scenario():
        await connect(bob_1, bob_2, a)
        listener = await layer.new_channel()
        await layer.group_add(presence.group(ticket.pk), listener)
        await bob_1.send_json_to({"type": "typing", "kind": "reply"})
        assert (await next_typing(layer, listener))["user"] == bob.pk
        await bob_2.send_json_to({"type": "typing", "kind": "reply"})  # Bob's second tab: over his limit
        await a.send_json_to({"type": "typing", "kind": "reply"})
        assert (await next_typing(layer, listener))["user"] == alice.pk  # nothing from Bob came before it
        await layer.group_discard(presence.group(ticket.pk), listener)
        for ws in (bob_1, bob_2, a):
            await ws.disconnect()

    run(scenario)


def test_an_agent_opening_too_many_sockets_is_refused_for_a_while(ticket, alice, monkeypatch):
    monkeypatch.setattr(consumers_console, "CONNECT_LIMIT", ratelimit.Limit(1, 60))
    first, second, on_list = ticket_socket(alice, ticket), ticket_socket(alice, ticket), list_socket(alice)

    async def scenario():
        await connect(first)
        assert await second.connect(timeout=5) == (False, 4429)
        assert await on_list.connect(timeout=5) == (False, 4429)
        assert len(raw_store().zrange(f"presence:ticket:{ticket.pk}", 0, -1)) == 1
        await first.disconnect()

    run(scenario)


def test_an_agent_does_not_see_their_own_typing_and_junk_frames_get_nothing(ticket, alice, bob):
    first_tab, second_tab, b = ticket_socket(alice, ticket), ticket_socket(alice, ticket), ticket_socket(bob, ticket)

    async def scenario():
        await connect(first_tab, second_tab)
        await first_tab.receive_from(timeout=3)
        await second_tab.receive_from(timeout=3)
        await first_tab.send_json_to({"type": "typing", "kind": "reply"})
        await second_tab.send_json_to({"type": "bogus"})
        await second_tab.send_to(text_data="not json")
        await second_tab.send_to(text_data="x" * 10_000)
        await second_tab.send_json_to(["a", "list"])
        await connect(b)
        # The second tab's next frame is Bob's arrival: nothing was sent for its own typing or the junk.
        assert shown(await second_tab.receive_from(timeout=3)) == ["Bob Baker"]
        for ws in (first_tab, second_tab, b):
            await ws.disconnect()

    run(scenario)


# --- the list -------------------------------------------------------------------------------------------


def test_the_list_shows_viewers_of_the_visible_tickets_only(ticket, queue, alice, bob):
    other_queue = DepartmentFactory()
    hidden = make_ticket(department=other_queue, body="Not in Bob's queues")
    outsider = named_agent(other_queue, "Olga")
    on_list, a, o = list_socket(bob), ticket_socket(alice, ticket), ticket_socket(outsider, hidden)

    async def scenario():
        await connect(a, o)
        await on_list.connect(timeout=5)
        await on_list.send_json_to({"type": "watch", "tickets": [ticket.pk, hidden.pk, 2**40, "1", True, None]})
        frame = await on_list.receive_from(timeout=3)
        assert row_initials(frame, ticket) == ["AA"]
        assert "Viewing now: Alice Archer" in frame
        assert await subscribers(presence.group(hidden.pk)) == 1  # Olga's page only, not Bob's list

        await o.disconnect()  # a change on the hidden ticket: nothing reaches the list
        await a.disconnect()
        frame = await on_list.receive_from(timeout=3)
        assert row_initials(frame, ticket) == []
        assert "Olga" not in frame
        await on_list.disconnect()

    run(scenario)


@pytest.mark.usefixtures("fast_beat")
def test_the_list_drops_a_viewer_whose_entry_expired(ticket, alice, bob):
    on_list = list_socket(bob)
    left_behind(ticket, alice)

    async def scenario():
        await connect(on_list)
        await on_list.send_json_to({"type": "watch", "tickets": [ticket.pk]})
        assert row_initials(await on_list.receive_from(timeout=3), ticket) == ["AA"]
        expire_now(ticket, alice)  # nobody is on the ticket: only the list's own beat can notice
        assert row_initials(await on_list.receive_from(timeout=3), ticket) == []
        await on_list.disconnect()

    run(scenario)


def test_a_viewer_arriving_later_shows_up_live_on_the_list(ticket, alice, bob):
    on_list, a = list_socket(bob), ticket_socket(alice, ticket)

    async def scenario():
        await connect(on_list)
        await on_list.send_json_to({"type": "watch", "tickets": [ticket.pk]})
        assert row_initials(await on_list.receive_from(timeout=3), ticket) == []
        await connect(a)
        assert row_initials(await on_list.receive_from(timeout=3), ticket) == ["AA"]
        await a.disconnect()
        await on_list.disconnect()

    run(scenario)


# --- the store and the language -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "accept", "expected"),
    [
        ("", "de-DE,de;q=0.9,en;q=0.8", "de"),
        ("fr", "de-DE,de;q=0.9", "en-us"),  # French is not a console language: the default, as on the page
        ("xx", "zz, es;q=0.5", "en-us"),
        ("", "", "en-us"),
    ],
)
def test_fragments_are_rendered_in_the_language_the_page_is_in(settings, cookie, accept, expected):
    settings.LANGUAGE_CODE = "en-us"
    settings.LANGUAGES = [("en", "English"), ("de", "German"), ("es", "Spanish"), ("fr", "French")]
    scope = {"cookies": {settings.LANGUAGE_COOKIE_NAME: cookie}, "headers": [(b"accept-language", accept.encode())]}
    assert consumers_console.language_of(scope) == expected


def test_touch_and_leave_report_changes_of_users_not_tabs(ticket):
    now = time.time()
    first = presence.viewer_touch(ticket_id=ticket.pk, user_id=1, connection="t1", name="Ann", now=now)
    assert (first.viewers, first.changed) == ([presence.Viewer(1, "Ann")], True)
    second_tab = presence.viewer_touch(ticket_id=ticket.pk, user_id=1, connection="t2", name="Ann", now=now)
    assert (second_tab.viewers, second_tab.changed) == ([presence.Viewer(1, "Ann")], False)
    beat = presence.viewer_touch(ticket_id=ticket.pk, user_id=1, connection="t1", name="Ann", now=now + 5)
    assert beat.changed is False
    one_tab_left = presence.viewer_leave(ticket_id=ticket.pk, user_id=1, connection="t1", name="Ann")
    assert (one_tab_left.viewers, one_tab_left.changed) == ([presence.Viewer(1, "Ann")], False)
    later = presence.viewer_touch(
        ticket_id=ticket.pk, user_id=2, connection="u1", name="Ben", now=now + presence.TTL_SECONDS + 1
    )
    assert (later.viewers, later.changed) == ([presence.Viewer(2, "Ben")], True)  # Ann's last tab expired


def test_initials_and_colours():
    assert presence.Viewer(3, "Ada Byron Lovelace").initials == "AL"
    assert presence.Viewer(3, "alice").initials == "AL"
    assert presence.Viewer(11, "Zoë").colour == 11 % presence.AVATAR_COLOURS
