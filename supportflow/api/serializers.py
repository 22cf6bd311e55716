"""What the API shows and accepts. Writes go through the services (state machine, SLA, audit log)."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework import serializers

from knowledge.models import Article
from tickets.models import Customer, Department, Message, Priority, Ticket
from tickets.services import CSAT_COMMENT_MAX_LENGTH


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name", "email", "is_vip", "created_at"]


class MessageSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["seq", "author_kind", "author", "body", "is_internal", "ai_confidence", "citations", "created_at"]

    def get_author(self, message: Message) -> str:
        if message.author_user_id:
            return message.author_user.get_full_name() or message.author_user.get_username()
        return message.get_author_kind_display()


class MessageCreateSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=10000, trim_whitespace=True)
    internal = serializers.BooleanField(default=False, help_text="An internal note, never shown to the customer.")
    set_status = serializers.ChoiceField(
        choices=[Ticket.Status.PENDING, Ticket.Status.RESOLVED], required=False, help_text="Then set this status."
    )


class TicketSerializer(serializers.ModelSerializer):
    customer = CustomerSerializer(read_only=True)
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Ticket
        fields = [
            "reference", "subject", "status", "priority", "channel", "category", "sentiment", "language",
            "department", "assignee", "escalated", "escalation_reason", "ai_summary", "customer",
            "created_at", "updated_at", "first_response_at", "resolved_at", "closed_at",
            "first_response_due_at", "resolution_due_at", "first_response_breached", "resolution_breached",
            "reopen_count", "csat_score", "ai_cost",
        ]  # fmt: skip
        read_only_fields = fields


class TicketCreateSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=255, required=False, allow_blank=True)
    body = serializers.CharField(max_length=10000, help_text="The customer's first message.")
    customer_email = serializers.EmailField(required=False, allow_blank=True)
    customer_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    department = serializers.SlugRelatedField(
        slug_field="slug", queryset=Department.objects.filter(is_active=True), required=False, allow_null=True
    )

    def validate(self, data):
        if not (data.get("customer_email") or data.get("customer_name")):
            raise serializers.ValidationError("Give the customer's email or name.")
        return data


class TicketUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    department = serializers.SlugRelatedField(
        slug_field="slug", queryset=Department.objects.filter(is_active=True), required=False
    )
    assignee = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True, is_staff=True),
        required=False,
        allow_null=True,
        help_text="Username, or null to unassign.",
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)


class CsatSerializer(serializers.Serializer):
    score = serializers.IntegerField(allow_null=True, help_text="1 (poor) to 5 (excellent); null until rated.")
    comment = serializers.CharField(allow_blank=True)
    rated_at = serializers.DateTimeField(allow_null=True)
    survey_sent_at = serializers.DateTimeField(
        allow_null=True, help_text="When the rating request went to the customer by email (email and API tickets)."
    )


class CsatCreateSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5, help_text="The customer's rating, 1 to 5.")
    comment = serializers.CharField(
        max_length=CSAT_COMMENT_MAX_LENGTH, required=False, allow_blank=True, help_text="The customer's words."
    )


class ArticleSerializer(serializers.ModelSerializer):
    category = serializers.StringRelatedField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Article
        fields = ["slug", "title", "body", "category", "tags", "language", "url", "published_at", "updated_at"]

    def get_url(self, article: Article) -> str:
        return f"/help/articles/{article.slug}/"


class ArticleListSerializer(ArticleSerializer):
    class Meta(ArticleSerializer.Meta):
        fields = ["slug", "title", "category", "tags", "language", "url", "published_at", "updated_at"]


class SearchHitSerializer(serializers.Serializer):
    title = serializers.CharField()
    url = serializers.CharField()
    heading_path = serializers.CharField()
    excerpt = serializers.CharField()
    score = serializers.FloatField()


# --- lists: the same output as the serializers above, from ``.values()`` rows -----------------------
# DRF's ModelSerializer costs ~0.3 ms per ticket (a Field object per value, get_attribute, timezone
# checks): two thirds of the ticket list's CPU. The lists read only the columns they show and format
# them here; ``test_api_lists.py`` checks the output equals the serializers' field for field.

TICKET_COLUMNS = (
    "id", "reference", "subject", "status", "priority", "channel", "category", "sentiment", "language",
    "department__slug", "assignee__username", "escalated", "escalation_reason", "ai_summary",
    "customer_id", "customer__name", "customer__email", "customer__is_vip", "customer__created_at",
    "created_at", "updated_at", "first_response_at", "resolved_at", "closed_at",
    "first_response_due_at", "resolution_due_at", "first_response_breached", "resolution_breached",
    "reopen_count", "csat_score", "ai_cost",
)  # fmt: skip
_TICKET_DATES = (
    "created_at", "updated_at", "first_response_at", "resolved_at", "closed_at",
    "first_response_due_at", "resolution_due_at",
)  # fmt: skip
_TICKET_PLAIN = (
    "reference", "subject", "status", "priority", "channel", "category", "sentiment", "language",
)  # fmt: skip
_TICKET_FLAGS = (
    "escalated", "escalation_reason", "ai_summary",
)  # fmt: skip
_TICKET_TAIL = ("first_response_breached", "resolution_breached", "reopen_count", "csat_score")
MESSAGE_COLUMNS = (
    "id", "seq", "author_kind", "author_user_id", "author_user__username", "author_user__first_name",
    "author_user__last_name", "body", "is_internal", "ai_confidence", "citations", "created_at",
)  # fmt: skip
_AUTHOR_KIND_LABELS = {value: str(label) for value, label in Message.AuthorKind.choices}
_MICRO = Decimal("0.000001")  # Ticket.ai_cost has 6 decimal places; DRF renders it as a fixed-point string


def _date_formatter():
    """DRF's ``DateTimeField`` output in the request's time zone: ISO 8601, ``Z`` for UTC."""
    zone = timezone.get_current_timezone()

    def fmt(value: dt.datetime | None) -> str | None:
        if value is None:
            return None
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return fmt


def ticket_rows(rows: list[dict]) -> list[dict]:
    """``TicketSerializer(many=True).data`` for rows of ``.values(*TICKET_COLUMNS)``."""
    fmt = _date_formatter()
    out = []
    for row in rows:
        item = {name: row[name] for name in _TICKET_PLAIN}
        item["department"] = row["department__slug"]
        item["assignee"] = row["assignee__username"]
        for name in _TICKET_FLAGS:
            item[name] = row[name]
        item["customer"] = {
            "id": row["customer_id"],
            "name": row["customer__name"],
            "email": row["customer__email"],
            "is_vip": row["customer__is_vip"],
            "created_at": fmt(row["customer__created_at"]),
        }
        for name in _TICKET_DATES:
            item[name] = fmt(row[name])
        for name in _TICKET_TAIL:
            item[name] = row[name]
        cost = row["ai_cost"]
        item["ai_cost"] = None if cost is None else format(cost.quantize(_MICRO), "f")
        out.append(item)
    return out


class RawRows(list):
    """Rows PostgreSQL wrote as JSON text (``ticket_json_rows``), rendered as they are by
    ``supportflow.api.renderers.JSONRenderer``: no Python value per field on the way out."""


def rows_in_sql() -> bool:
    """Whether the rows may be written by PostgreSQL: its timestamps (``_ticket_json_sql``) are what
    ``_date_formatter`` writes only in UTC (the default ``TIME_ZONE``); in any other zone the rows are made
    in Python."""
    return timezone.get_current_timezone_name() == "UTC"


def ticket_json_rows(ids: list[int]) -> RawRows:
    """``ticket_rows``' rows for the tickets ``ids`` (a page the view already cut and scoped), in that
    order, each written as JSON by PostgreSQL in one statement whose text never changes (not composed by
    the ORM on every request). A ticket deleted since the page was cut is left out, as a page read a
    moment later would."""
    if not ids:
        return RawRows()
    with connection.cursor() as cursor:
        cursor.execute(_ticket_json_sql(), [list(ids)])
        written = dict(cursor.fetchall())
    return RawRows(written[pk] for pk in ids if pk in written)


@functools.cache
def _ticket_json_parts() -> tuple[str, str]:
    """The JSON text of a ticket row over the aliases ``t`` (ticket), ``c``, ``d``, ``u``, and those tables."""
    qn = connection.ops.quote_name

    def column(model, name: str, alias: str) -> str:
        return f"{alias}.{qn(model._meta.get_field(name).column)}"

    def iso(expression: str) -> str:
        """``datetime.isoformat`` in UTC with ``Z``: the microseconds only when there are some."""
        return (
            f"CASE WHEN {expression} IS NULL THEN NULL ELSE "
            f"TO_CHAR({expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
            f"CASE WHEN TO_CHAR({expression}, 'US') = '000000' THEN '' "
            f"ELSE TO_CHAR({expression} AT TIME ZONE 'UTC', '.US') END || 'Z' END"
        )

    def obj(pairs: dict[str, str]) -> str:  # json, not jsonb: the keys stay in the serializer's order
        return "JSON_BUILD_OBJECT(" + ", ".join(f"'{key}', {value}" for key, value in pairs.items()) + ")"

    user = get_user_model()
    pairs = {name: column(Ticket, name, "t") for name in _TICKET_PLAIN}
    pairs["department"] = column(Department, "slug", "d")
    pairs["assignee"] = column(user, user.USERNAME_FIELD, "u")
    pairs.update((name, column(Ticket, name, "t")) for name in _TICKET_FLAGS)
    pairs["customer"] = obj(
        {
            "id": column(Customer, "id", "c"),
            "name": column(Customer, "name", "c"),
            "email": column(Customer, "email", "c"),
            "is_vip": column(Customer, "is_vip", "c"),
            "created_at": iso(column(Customer, "created_at", "c")),
        }
    )
    pairs.update((name, iso(column(Ticket, name, "t"))) for name in _TICKET_DATES)
    pairs.update((name, column(Ticket, name, "t")) for name in _TICKET_TAIL)
    pairs["ai_cost"] = f"({column(Ticket, 'ai_cost', 't')})::text"  # numeric(12, 6): always six places
    # names from the models' metadata only
    tables = (
        f"{qn(Ticket._meta.db_table)} t "
        f"JOIN {qn(Customer._meta.db_table)} c ON c.{qn('id')} = {column(Ticket, 'customer', 't')} "
        f"LEFT JOIN {qn(Department._meta.db_table)} d ON d.{qn('id')} = {column(Ticket, 'department', 't')} "
        f"LEFT JOIN {qn(user._meta.db_table)} u ON u.{qn('id')} = {column(Ticket, 'assignee', 't')}"
    )
    return f"{obj(pairs)}::text", tables


@functools.cache
def _ticket_json_sql() -> str:
    row, tables = _ticket_json_parts()
    pk = connection.ops.quote_name("id")
    return f"SELECT t.{pk}, {row} FROM {tables} WHERE t.{pk} = ANY(%s)"  # noqa: S608 — the ids are a parameter


@functools.cache
def ticket_json_row_sql(id_column: str) -> str:
    """A scalar subquery writing the ticket whose id is ``id_column`` (a column of the enclosing query) as
    ``ticket_json_rows`` writes it: the page statement carries its rows, one round trip instead of two."""
    row, tables = _ticket_json_parts()
    return f"SELECT {row} FROM {tables} WHERE t.{connection.ops.quote_name('id')} = {id_column}"  # noqa: S608


def message_rows(rows: list[dict]) -> list[dict]:
    """``MessageSerializer(many=True).data`` for rows of ``.values(*MESSAGE_COLUMNS)``."""
    fmt = _date_formatter()
    out = []
    for row in rows:
        if row["author_user_id"]:
            full_name = f"{row['author_user__first_name']} {row['author_user__last_name']}".strip()
            author = full_name or row["author_user__username"]
        else:
            author = _AUTHOR_KIND_LABELS.get(row["author_kind"], row["author_kind"])
        out.append(
            {
                "seq": row["seq"],
                "author_kind": row["author_kind"],
                "author": author,
                "body": row["body"],
                "is_internal": row["is_internal"],
                "ai_confidence": row["ai_confidence"],
                "citations": row["citations"],
                "created_at": fmt(row["created_at"]),
            }
        )
    return out
