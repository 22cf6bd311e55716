"""Sequence numbers and ticket references under real concurrent writers (threads, each with its own
database connection from the pool), against the real PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tickets import services
from tickets.models import Message, Ticket
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_ticket

WRITERS = 6
PER_WRITER = 15


def _in_thread(fn):
    def run(*args):
        try:
            return fn(*args)
        finally:
            connection.close()

    return run


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_unique_gap_free_sequence_numbers():
    ticket = make_ticket(department=DepartmentFactory())
    start = threading.Barrier(WRITERS)

    @_in_thread
    def writer(n: int) -> list[int]:
        start.wait()
        return [
            services.message_create(ticket=ticket, author_kind="customer", body=f"writer {n} message {i}").seq
            for i in range(PER_WRITER)
        ]

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(writer, range(WRITERS)))

    seqs = sorted(seq for batch in results for seq in batch)
    assert seqs == list(range(2, 2 + WRITERS * PER_WRITER))
    assert list(Message.objects.filter(ticket=ticket).order_by("seq").values_list("seq", flat=True)) == list(
        range(1, 2 + WRITERS * PER_WRITER)
    )
    ticket.refresh_from_db()
    assert ticket.last_message_seq == 1 + WRITERS * PER_WRITER


@pytest.mark.django_db(transaction=True)
def test_concurrent_resends_of_one_message_store_it_once_without_a_gap():
    """Resends racing on the hot path: the unique client id rolls back the losers' statement — sequence
    number included — and they answer with the stored message."""
    ticket = make_ticket(department=DepartmentFactory())
    start = threading.Barrier(WRITERS)

    @_in_thread
    def resend(n: int) -> tuple[int, int]:
        start.wait()
        message = services.message_create(ticket=ticket, author_kind="customer", body="once", client_msg_id="dup")
        return message.pk, message.seq

    with ThreadPoolExecutor(WRITERS) as pool:
        results = set(pool.map(resend, range(WRITERS)))

    assert len(results) == 1
    assert next(iter(results))[1] == 2
    nxt = services.message_create(ticket=ticket, author_kind="customer", body="next")
    assert nxt.seq == 3
    assert list(Message.objects.filter(ticket=ticket).order_by("seq").values_list("seq", flat=True)) == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_concurrent_ticket_creation_gets_unique_references():
    department = DepartmentFactory()
    customers = [CustomerFactory() for _ in range(WRITERS)]
    start = threading.Barrier(WRITERS)

    @_in_thread
    def creator(n: int) -> list[str]:
        start.wait()
        return [
            services.ticket_create(
                customer=customers[n], subject=f"t{n}-{i}", body="help", department=department
            ).reference
            for i in range(PER_WRITER)
        ]

    with ThreadPoolExecutor(WRITERS) as pool:
        references = [ref for batch in pool.map(creator, range(WRITERS)) for ref in batch]

    assert len(references) == len(set(references)) == WRITERS * PER_WRITER
    assert Ticket.objects.filter(department=department).count() == WRITERS * PER_WRITER
    assert all(ref.startswith("SF-") for ref in references)


@pytest.mark.django_db(transaction=True)
def test_concurrent_get_or_create_customer_makes_one_row():
    start = threading.Barrier(WRITERS)

    @_in_thread
    def get(_: int) -> int:
        start.wait()
        return services.customer_get_or_create(email="race@example.com", name="Race").pk

    with ThreadPoolExecutor(WRITERS) as pool:
        pks = set(pool.map(get, range(WRITERS)))

    assert len(pks) == 1
