"""Knowledge base: categories, articles (markdown) and their chunks (embedding + full-text vector).

Chunks are derived data, rebuilt by ``knowledge.services.article_reindex`` whenever an article
changes. ``Chunk.is_public`` (published article in the default namespace) is what customer-facing
search filters on; the HNSW index covers only those rows, because pgvector 0.6 filters after the
index scan. Other namespaces hold isolated copies (evaluation data) and are searched exactly.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone
from pgvector.django import VectorField

EMBEDDING_DIMENSIONS = 384
DEFAULT_NAMESPACE = "default"


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        ARCHIVED = "archived", "Archived"

    class Source(models.TextChoices):
        WRITTEN = "written", "Written here"
        UPLOAD = "upload", "Uploaded file"
        LEARNED = "learned", "Learned from tickets"

    namespace = models.CharField(max_length=50, default=DEFAULT_NAMESPACE, db_index=True)
    title = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255)
    body = models.TextField(help_text="Markdown.")
    category = models.ForeignKey(Category, on_delete=models.SET_NULL, null=True, blank=True, related_name="articles")
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    language = models.CharField(max_length=16, default="en")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.WRITTEN)
    source_name = models.CharField(max_length=255, blank=True, help_text="File it was ingested from.")
    external_id = models.CharField(max_length=100, blank=True, help_text="Id in the source (e.g. a dataset).")
    view_count = models.PositiveIntegerField(default=0)
    helpful_yes = models.PositiveIntegerField(default=0)
    helpful_no = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    indexed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["title"]
        constraints = [models.UniqueConstraint(fields=["namespace", "slug"], name="article_slug_unique_per_namespace")]
        indexes = [models.Index(fields=["namespace", "status"], name="article_namespace_status")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_public(self) -> bool:
        return self.status == self.Status.PUBLISHED and self.namespace == DEFAULT_NAMESPACE


class Chunk(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="chunks")
    namespace = models.CharField(max_length=50, default=DEFAULT_NAMESPACE)
    is_public = models.BooleanField(default=False)
    language = models.CharField(max_length=16, default="en")
    position = models.PositiveIntegerField()
    heading_path = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    char_start = models.PositiveIntegerField()
    char_end = models.PositiveIntegerField()
    token_count = models.PositiveIntegerField(default=0)
    content_hash = models.CharField(max_length=64, db_index=True, help_text="Model + embedded text: reuse key.")
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True)
    search_vector = SearchVectorField(null=True)
    # The prompt-injection guard's verdict on this passage (tickets.ai.guard, source "passage"), set the
    # first time the AI retrieves it or by the background sweep; null = not scanned yet. A chunk's text
    # never changes (re-indexing replaces the rows), so one scan per row is enough.
    injection_flagged = models.BooleanField(null=True, editable=False)
    injection_score = models.FloatField(null=True, editable=False)

    class Meta:
        ordering = ["article", "position"]
        constraints = [models.UniqueConstraint(fields=["article", "position"], name="chunk_position_unique")]
        indexes = [
            GinIndex(fields=["search_vector"], name="chunk_search_vector_gin"),
            models.Index(fields=["namespace", "is_public"], name="chunk_namespace_public"),
        ]

    def __str__(self) -> str:
        return f"{self.article_id}#{self.position}"


class ArticleVote(models.Model):
    """One "was this helpful?" answer per visitor and article (the visitor is a random cookie id)."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="votes")
    visitor = models.CharField(max_length=64)
    helpful = models.BooleanField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["article", "visitor"], name="article_vote_once_per_visitor")]

    def __str__(self) -> str:
        return f"{self.article_id}: {'yes' if self.helpful else 'no'}"


class SuggestionImpression(models.Model):
    """An article suggested to someone (chat, help search): shown, and maybe clicked. Counts deflection."""

    class Place(models.TextChoices):
        CHAT_START = "chat_start", "Chat start form"
        CHAT = "chat", "Chat conversation"
        HELP_SEARCH = "help_search", "Help center search"

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="impressions")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    place = models.CharField(max_length=20, choices=Place.choices)
    query = models.CharField(max_length=200, blank=True)
    rank = models.PositiveSmallIntegerField(default=1)
    shown_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    clicked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.article_id} in {self.place}"


class IngestJob(models.Model):
    """An admin upload being ingested by the worker; the upload page polls its progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    created_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    default_status = models.CharField(max_length=10, choices=Article.Status.choices, default=Article.Status.DRAFT)
    files = models.JSONField(default=list, help_text="Stored upload names, in order.")
    done = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=list, help_text="One entry per processed file: name, outcome, message.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Upload {self.pk} ({self.status})"

    @property
    def total(self) -> int:
        return len(self.files)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100
