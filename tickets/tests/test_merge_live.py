"""Merges under real concurrency (threads, each with its own pooled connection, against PostgreSQL) and
what live sockets of the two tickets are told (the ASGI stack and the Redis channel layer)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tickets import realtime, selectors, services
from tickets.consumers import db
from tickets.models import Message, Ticket
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_agent, make_ticket
from tickets.tests.test_concurrency import _in_thread
from tickets.tests.test_consumers import agent_socket, customer_socket, receive_until, run, subscribers

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 5
WRITES = 12


def one_customers_pair(department) -> tuple[Ticket, Ticket]:
    customer = CustomerFactory()
    return make_ticket(department=department, customer=customer), make_ticket(department=department, customer=customer)


def test_two_merges_of_one_pair_in_opposite_directions_never_deadlock():
    """Each round, "A into B" and "B into A" start together: both lock the pair in the same order, so one
    merges and the other finds its ticket already merged (a deadlock would raise a database error)."""
    department = DepartmentFactory()
    for _ in range(ROUNDS):
        a, b = one_customers_pair(department)
        start = threading.Barrier(2)

        @_in_thread
        def merge(primary: Ticket, secondary: Ticket, start: threading.Barrier = start) -> str:
            start.wait()
            try:
                services.ticket_merge(primary=primary, secondary=secondary)
            except services.TicketRuleError:
                return "refused"
            return "merged"

        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(merge, (a, b), (b, a)))

        assert outcomes == ["merged", "refused"]
        merged = Ticket.objects.filter(pk__in=[a.pk, b.pk]).exclude(merged_into=None)
        [secondary] = merged
        primary = b if secondary.pk == a.pk else a
        assert list(Message.objects.filter(ticket=primary).values_list("seq", flat=True)) == [1, 2, 3]


def test_customers_writing_to_both_tickets_during_a_merge_lose_nothing():
    """Writers on each ticket race the merge: every message is stored once in a gap-free thread, or refused
    with the reason (the secondary, once merged) — never lost, never numbered twice."""
    primary, secondary = one_customers_pair(DepartmentFactory())
    start = threading.Barrier(3)

    @_in_thread
    def write(ticket: Ticket) -> tuple[list[str], list[str]]:
        start.wait()
        stored, refusals = [], []
        for n in range(WRITES):
            body = f"{ticket.reference} message {n}"
            try:
                services.message_create(ticket=Ticket(pk=ticket.pk), author_kind="customer", body=body)
            except services.TicketRuleError as exc:
                refusals.append(str(exc))
            else:
                stored.append(body)
        return stored, refusals

    @_in_thread
    def merge() -> None:
        start.wait()
        services.ticket_merge(primary=primary, secondary=secondary)

    with ThreadPoolExecutor(3) as pool:
        writers = [pool.submit(write, primary), pool.submit(write, secondary)]
        pool.submit(merge).result()
        results = [writer.result() for writer in writers]
    stored = [body for written, _ in results for body in written]
    refusals = [text for _, refused in results for text in refused]

    seqs, bodies = zip(*Message.objects.filter(ticket=primary).order_by("seq").values_list("seq", "body"), strict=True)
    assert list(seqs) == list(range(1, len(seqs) + 1))
    assert set(stored) <= set(bodies)
    assert all(f"{secondary.reference} was merged into {primary.reference}" in text for text in refusals)
    assert results[0][1] == []  # the primary never refuses
    assert len(bodies) == 2 + len(stored) + 1  # the two first messages, every stored write, the merge note
    assert not Message.objects.filter(ticket=secondary).exists()
    for reference in (primary.reference, secondary.reference):  # each writer's messages in the order written
        own = [b for b in bodies if b.startswith(f"{reference} message")]
        assert own == sorted(own, key=lambda b: int(b.rsplit(" ", 1)[1]))
    assert Ticket.objects.get(pk=primary.pk).last_message_seq == len(seqs)


def test_open_pages_of_both_tickets_are_told_and_the_secondarys_link_reconnects_to_the_merged_thread(
    fresh_channel_layer,
):
    department = DepartmentFactory()
    agent = make_agent(department)
    primary, secondary = one_customers_pair(department)
    old_token = selectors.ticket_customer_token(ticket=secondary)
    customer_old, console_old = customer_socket(secondary), agent_socket(agent, secondary)
    customer_kept = customer_socket(primary)

    async def scenario():
        for ws in (customer_old, console_old, customer_kept):
            assert (await ws.connect(timeout=5))[0]
        await receive_until(customer_old, "joined the conversation")

        await db(services.ticket_merge)(primary=primary, secondary=secondary, actor=agent)

        told = await receive_until(customer_old, "was merged into")
        assert f"This conversation was merged into {primary.reference}." in told
        assert 'href=""' in told  # a reload opens the merged conversation
        told = await receive_until(console_old, "was merged into")
        assert f'href="/admin/tickets/ticket/{primary.pk}/change/"' in told
        await receive_until(customer_kept, f"Conversation {secondary.reference} was merged into this one.")
        await receive_until(customer_kept, "Another conversation was merged into this one.")
        for ws in (customer_old, console_old, customer_kept):
            await ws.disconnect()

        again = customer_socket(secondary, token=old_token)
        assert (await again.connect(timeout=5))[0]
        assert await subscribers(realtime.ticket_group(primary.pk)) == 1
        await again.send_json_to({"type": "resync", "after": 0})
        frame = await receive_until(again, r'data-seq="3"')
        assert frame.count('data-seq="') == 3
        await again.disconnect()

    run(scenario)
