"""What the API shows and accepts. Writes go through the services (state machine, SLA, audit log)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from knowledge.models import Article
from tickets.models import Customer, Department, Message, Priority, Ticket


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
