"""Writing the simulated rows: PostgreSQL ``COPY`` per table in one transaction per chunk, with ids taken
from the tables' own sequences and references from ``tickets_ticket_reference_seq``, so tickets the app
creates later never collide."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from django.db import connection, transaction

from tickets.models import AIDraft, AIRun, Customer, Message, Ticket, TicketEvent

CUSTOMER_COLUMNS = ("id", "name", "email", "is_vip", "created_at")
TICKET_COLUMNS = (
    "id", "reference", "access_key", "subject", "customer_id", "status", "priority", "channel", "category",
    "sentiment", "language", "department_id", "assignee_id", "escalated", "escalation_reason", "escalated_at",
    "needs_human", "ai_summary", "triage", "first_response_due_at", "resolution_due_at", "sla_paused_at",
    "sla_paused_minutes", "first_response_breached", "resolution_breached", "created_at", "updated_at",
    "first_response_at", "last_customer_message_at", "resolved_at", "closed_at", "reopen_count", "csat_score",
    "csat_comment", "csat_at", "ai_cost", "last_message_seq", "conversation", "ui_language", "ui_language_chosen",
    "opened_by_id", "merged_into_id",
)  # fmt: skip
MESSAGE_COLUMNS = (
    "id", "ticket_id", "seq", "author_kind", "author_user_id", "body", "is_internal", "ai_confidence", "citations",
    "client_msg_id", "created_at", "feedback", "feedback_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "ticket_id", "created_at", "kind", "field", "from_value", "to_value", "note", "actor_id", "actor_kind",
)  # fmt: skip
RUN_COLUMNS = (
    "id", "key", "ticket_id", "message_id", "kind", "provider", "model", "tokens_in", "tokens_out", "cost",
    "latency_ms", "status", "error", "attempts", "fallback", "meta", "created_at", "finished_at", "prompt_version",
)  # fmt: skip
DRAFT_COLUMNS = (
    "id", "ticket_id", "in_reply_to_id", "body", "citations", "confidence", "provider", "model", "gate", "status",
    "sent_message_id", "used_by_id", "created_at", "decided_at",
)  # fmt: skip
TABLES = (
    (Customer, CUSTOMER_COLUMNS),
    (Ticket, TICKET_COLUMNS),
    (Message, MESSAGE_COLUMNS),
    (TicketEvent, EVENT_COLUMNS),
    (AIRun, RUN_COLUMNS),
    (AIDraft, DRAFT_COLUMNS),
)


def check_columns() -> None:
    """Every column of the tables written is given a value: COPY would put NULL (or fail) in one added
    later by a migration, so a new field must be added here first."""
    for model, columns in TABLES:
        expected = {f.column for f in model._meta.concrete_fields}
        if expected != set(columns):
            raise RuntimeError(
                f"supportflow.demo.rows is out of date for {model._meta.db_table}: "
                f"missing {sorted(expected - set(columns))}, unknown {sorted(set(columns) - expected)}"
            )


@dataclass
class Batch:
    tickets: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    events: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    drafts: list = field(default_factory=list)


def _ids(cursor, table: str, count: int) -> list[int]:
    if count == 0:
        return []
    cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
    return [row[0] for row in cursor.fetchall()]


def _copy(cursor, table: str, columns: tuple[str, ...], rows) -> None:
    with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def write_customers(customers: list[tuple]) -> list[int]:
    with transaction.atomic(), connection.cursor() as cursor:
        ids = _ids(cursor, Customer._meta.db_table, len(customers))
        _copy(cursor, Customer._meta.db_table, CUSTOMER_COLUMNS, ((i, *c) for i, c in zip(ids, customers, strict=True)))
    return ids


def write_batch(batch: Batch, customer_ids: list[int]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        ticket_ids = _ids(cursor, Ticket._meta.db_table, len(batch.tickets))
        message_ids = _ids(cursor, Message._meta.db_table, len(batch.messages))
        event_ids = _ids(cursor, TicketEvent._meta.db_table, len(batch.events))
        run_ids = _ids(cursor, AIRun._meta.db_table, len(batch.runs))
        draft_ids = _ids(cursor, AIDraft._meta.db_table, len(batch.drafts))
        cursor.execute(
            "SELECT nextval('tickets_ticket_reference_seq') FROM generate_series(1, %s)", [len(batch.tickets)]
        )
        references = [f"SF-{row[0]:06d}" for row in cursor.fetchall()]
        _copy(
            cursor,
            Ticket._meta.db_table,
            TICKET_COLUMNS,
            (
                (ticket_ids[i], references[i], secrets.token_urlsafe(32), t[0], customer_ids[t[1]], *t[2:])
                for i, t in enumerate(batch.tickets)
            ),
        )
        _copy(
            cursor,
            Message._meta.db_table,
            MESSAGE_COLUMNS,
            ((message_ids[i], ticket_ids[m[0]], *m[1:8], "", *m[8:]) for i, m in enumerate(batch.messages)),
        )
        _copy(
            cursor,
            TicketEvent._meta.db_table,
            EVENT_COLUMNS,
            ((event_ids[i], ticket_ids[e[0]], *e[1:]) for i, e in enumerate(batch.events)),
        )
        _copy(
            cursor,
            AIRun._meta.db_table,
            RUN_COLUMNS,
            (
                (run_ids[i], f"{r[0]}:message:{message_ids[r[2]]}", ticket_ids[r[1]], message_ids[r[2]], *r[3:], "")
                for i, r in enumerate(batch.runs)
            ),
        )
        _copy(
            cursor,
            AIDraft._meta.db_table,
            DRAFT_COLUMNS,
            (
                (
                    draft_ids[i],
                    ticket_ids[d[0]],
                    message_ids[d[1]],
                    *d[2:9],
                    None if d[9] is None else message_ids[d[9]],
                    *d[10:],
                )
                for i, d in enumerate(batch.drafts)
            ),
        )
