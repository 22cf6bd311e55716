"""``/api/v1/`` endpoints: thin views over the selectors (who sees what) and services (every write)."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, filters, generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from knowledge.models import Article
from knowledge.selectors import kb_search
from supportflow.api import serializers as s
from supportflow.api.pagination import ROW_COLUMN, KeysetPagination
from supportflow.errors import api_error_response
from supportflow.models import APIKey
from tickets import selectors, services
from tickets.models import Customer, Message, Ticket
from tickets.roles import user_is_manager

TICKET_FILTERS = {  # query parameter → lookup: the ticket list's filters by exact value
    "status": "status",
    "priority": "priority",
    "channel": "channel",
    "department": "department__slug",
    "assignee": "assignee__username",
}


def _tickets(scope: str, user_id: int | None, given: dict[str, str], escalated: bool | None):
    tickets = selectors.tickets_in_scope(scope=scope, user_id=user_id)
    for name, value in given.items():
        tickets = tickets.filter(**{TICKET_FILTERS[name]: value})
    return tickets if escalated is None else tickets.filter(escalated=escalated)


class TicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tickets the caller may see (their queues, unrouted and their own; managers all)."""

    serializer_class = s.TicketSerializer
    pagination_class = KeysetPagination
    lookup_field = "reference"
    lookup_value_regex = r"[^/]+"  # anything: a malformed reference is a JSON 404, like an unknown one
    filter_backends = [filters.OrderingFilter, filters.SearchFilter]
    ordering_fields = ["created_at", "updated_at", "priority", "status"]
    ordering = ["-created_at"]
    search_fields = ["reference", "subject", "customer__email", "customer__name"]
    required_scopes = {"GET": "tickets:read", "*": "tickets:write"}

    def get_queryset(self):
        given, escalated = self._filters()
        return _tickets(selectors.ticket_scope(self.request.user), self.request.user.pk, given, escalated)

    def _filters(self) -> tuple[dict[str, str], bool | None]:
        params = self.request.query_params
        given = {name: params[name] for name in TICKET_FILTERS if params.get(name)}
        return given, {"true": True, "false": False}.get(params.get("escalated"))

    @extend_schema(
        parameters=[
            OpenApiParameter("status", enum=Ticket.Status.values),
            OpenApiParameter("priority", enum=["urgent", "high", "normal", "low"]),
            OpenApiParameter("channel", enum=Ticket.Channel.values),
            OpenApiParameter("department", str, description="Department slug."),
            OpenApiParameter("assignee", str, description="Username."),
            OpenApiParameter("escalated", bool),
        ]
    )
    def list(self, request, *args, **kwargs):
        if s.rows_in_sql():  # the page's keys from the ORM, its rows written as JSON by PostgreSQL
            keys = self._keys_page(request)
            if keys and ROW_COLUMN in keys[0]:  # written by the page's own statement
                return self.get_paginated_response(s.RawRows(key[ROW_COLUMN] for key in keys))
            return self.get_paginated_response(s.ticket_json_rows([key["id"] for key in keys]))
        rows = self.paginate_queryset(self.filter_queryset(self.get_queryset()).values(*s.TICKET_COLUMNS))
        return self.get_paginated_response(s.ticket_rows(rows))

    def _keys_page(self, request) -> list[dict]:
        """The page's ids and the ordering values a cursor needs. Without a search, its statement is
        composed by the ORM once per shape (the scope, which filters, the ordering, the cursor's direction)
        and bound to this request's values (``KeysetPagination.paginate_compiled``); a search's ``LIKE``
        patterns are composed on every request."""
        ordering = filters.OrderingFilter().get_ordering(request, Ticket.objects.none(), self)
        columns = ("id", *(term.lstrip("-") for term in ordering))  # what the page's cursors need
        if filters.SearchFilter().get_search_terms(request):
            return self.paginate_queryset(self.filter_queryset(self.get_queryset()).values(*columns))
        scope = selectors.ticket_scope(request.user)
        given, escalated = self._filters()
        names = tuple(given)

        by_user = scope == selectors.TicketScope.SERVED  # only that scope's SQL has the user's id in it

        def build(values: list):
            user_id, chosen = (values[0], values[1:]) if by_user else (None, values)
            tickets = _tickets(scope, user_id, dict(zip(names, chosen, strict=True)), escalated)
            return self.filter_queryset(tickets).values(*columns)  # the ordering; no search terms here

        return self.paginator.paginate_compiled(
            request,
            model=Ticket,
            ordering=list(ordering),
            shape=("tickets", scope, names, escalated),
            values=[*([request.user.pk] if by_user else []), *given.values()],
            build=build,
            row_sql=s.ticket_json_row_sql,
        )

    @extend_schema(request=s.TicketCreateSerializer, responses={201: s.TicketSerializer})
    def create(self, request):
        data = _valid(s.TicketCreateSerializer, request.data)
        customer = services.customer_get_or_create(
            email=data.get("customer_email", ""), name=data.get("customer_name", "")
        )
        ticket = services.ticket_create(
            customer=customer,
            subject=data.get("subject") or "",
            body=data["body"],
            channel=Ticket.Channel.API,
            priority=data["priority"],
            department=data.get("department"),
            actor=request.user,
        )
        return Response(s.TicketSerializer(ticket).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.TicketUpdateSerializer, responses={200: s.TicketSerializer})
    def partial_update(self, request, reference=None):
        ticket = self.get_object()
        data = _valid(s.TicketUpdateSerializer, request.data)
        if "assignee" in data:
            ticket = services.ticket_assign(ticket=ticket, assignee=data["assignee"], actor=request.user)
        triage = {k: data[k] for k in ("priority", "department") if k in data}
        if triage:
            if "department" in triage and not request.user.has_perm("tickets.view_all_departments_ticket"):
                raise exceptions.PermissionDenied("Only managers move tickets to another queue through the API.")
            ticket = services.ticket_update_triage(ticket=ticket, actor=request.user, **triage)
        if "status" in data and data["status"] != ticket.status:
            ticket = services.ticket_change_status(
                ticket=ticket, to_status=data["status"], actor=request.user, note=data.get("note", "")
            )
        ticket.refresh_from_db()
        return Response(s.TicketSerializer(ticket).data)

    @extend_schema(responses={200: s.MessageSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def messages(self, request, reference=None, format=None):  # format: the router's ".json" suffix
        ticket = get_object_or_404(self.get_queryset().only("pk", "merged_into_id"), reference=reference)
        ticket = selectors.ticket_follow_merge(ticket=ticket, scope=self.get_queryset())
        thread = selectors.ticket_thread(ticket=ticket, include_internal=True).values(*s.MESSAGE_COLUMNS)
        return self.get_paginated_response(s.message_rows(self.paginate_queryset(thread)))

    @extend_schema(request=s.MessageCreateSerializer, responses={201: s.MessageSerializer})
    @messages.mapping.post
    def add_message(self, request, reference=None, format=None):
        ticket = self.get_object()
        data = _valid(s.MessageCreateSerializer, request.data)
        message = services.message_create(
            ticket=ticket,
            author_kind=Message.AuthorKind.AGENT,
            author_user=request.user,
            body=data["body"],
            is_internal=data["internal"],
            set_status=data.get("set_status"),
        )
        return Response(s.MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: s.CsatSerializer})
    @action(detail=True, methods=["get"])
    def csat(self, request, reference=None, format=None):
        """The customer's rating of the ticket, and when the rating request was emailed."""
        return Response(s.CsatSerializer(selectors.ticket_csat(ticket=self.get_object())).data)

    @extend_schema(request=s.CsatCreateSerializer, responses={200: s.CsatSerializer})
    @csat.mapping.post
    def record_csat(self, request, reference=None, format=None):
        """Record the customer's rating collected by the integration (a resolved or closed ticket; a later
        rating replaces it). With an API key only: a console session cannot rate on a customer's behalf."""
        if not isinstance(request.auth, APIKey):
            raise exceptions.PermissionDenied("A rating is recorded with an API key, on the customer's behalf.")
        ticket = self.get_object()
        data = _valid(s.CsatCreateSerializer, request.data)
        ticket = services.ticket_record_csat(
            ticket=ticket, score=data["score"], comment=data.get("comment", ""), actor=request.user
        )
        return Response(s.CsatSerializer(selectors.ticket_csat(ticket=ticket)).data)

    def get_object(self) -> Ticket:
        """By reference; a merged ticket's reference answers with the ticket it was merged into."""
        tickets = self.get_queryset().select_related("customer", "department", "assignee")
        ticket = get_object_or_404(tickets, reference=self.kwargs["reference"])
        return selectors.ticket_follow_merge(ticket=ticket, scope=tickets)


class CustomerViewSet(viewsets.ReadOnlyModelViewSet):
    """Customers with at least one ticket the caller may see."""

    serializer_class = s.CustomerSerializer
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["name", "email"]
    ordering = ["-created_at"]
    required_scopes = {"*": "tickets:read"}

    def get_queryset(self):
        visible = selectors.ticket_queryset_for_user(user=self.request.user).values("customer_id")
        return Customer.objects.filter(pk__in=visible)


class ArticleViewSet(viewsets.ReadOnlyModelViewSet):
    """Published help-centre articles (what customers can read)."""

    lookup_field = "slug"
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["title", "tags"]
    ordering = ["title"]
    required_scopes = {"*": "kb:read"}

    def get_queryset(self):
        return Article.objects.filter(status=Article.Status.PUBLISHED, namespace="default").select_related("category")

    def get_serializer_class(self):
        return s.ArticleListSerializer if self.action == "list" else s.ArticleSerializer


class KBSearchView(generics.GenericAPIView):
    """Hybrid (vector + full-text) search over published articles, as the chat and the AI use it."""

    required_scopes = {"*": "kb:read"}
    serializer_class = s.SearchHitSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True),
            OpenApiParameter("k", int, description="1–20, default 5."),
            OpenApiParameter("language", str, description="e.g. en, de."),
        ],
        responses={200: s.SearchHitSerializer(many=True)},
    )
    def get(self, request):
        query = (request.query_params.get("q") or "").strip()
        if not query:
            raise exceptions.ValidationError({"q": ["Give a search query."]})
        try:
            k = min(20, max(1, int(request.query_params.get("k", 5))))
        except ValueError:
            raise exceptions.ValidationError({"k": ["A whole number from 1 to 20."]}) from None
        hits = kb_search(query[:500], k=k, language=(request.query_params.get("language") or "en")[:8])
        data = [
            {"title": h.title, "url": h.url, "heading_path": h.heading_path, "excerpt": h.text[:400], "score": h.score}
            for h in hits
        ]
        return Response(s.SearchHitSerializer(data, many=True).data)


class AnalyticsSummaryView(APIView):
    """The overview tiles for a date range (managers only)."""

    required_scopes = {"*": "analytics:read"}

    @extend_schema(
        parameters=[OpenApiParameter("days", int, description="Last N days including today (1–366, default 30).")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        from analytics import metrics, rollup

        if not user_is_manager(request.user):
            raise exceptions.PermissionDenied("The analytics summary is for managers.")
        try:
            days = int(request.query_params.get("days", 30))
        except ValueError:
            raise exceptions.ValidationError({"days": ["A whole number from 1 to 366."]}) from None
        if not 1 <= days <= 366:
            raise exceptions.ValidationError({"days": ["A whole number from 1 to 366."]})
        today = rollup.today()
        f = metrics.Filters(today - dt.timedelta(days=days - 1), today)
        rollup.ensure_fresh()
        with metrics.reading():
            totals, live = metrics.totals(f), metrics.live(f)
        return Response({"from": f.start, "to": f.end, **{k: _plain(v) for k, v in {**totals, **live}.items()}})


def _plain(value):
    return str(value) if value is not None and not isinstance(value, int | float | str) else value


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def not_found(request, *args, **kwargs):
    """Every other path under /api/v1/: the API's own JSON 404, not the site's HTML page."""
    return api_error_response(404, "not_found", "No such API endpoint. The list is at /api/v1/docs/.")
