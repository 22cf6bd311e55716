"""Knowledge base in the console. Saving goes through ``knowledge.services`` (re-index on commit)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from knowledge import services
from knowledge.models import Article, Category, IngestJob
from supportflow.markdown import render_article


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "position")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "category",
        "status",
        "language",
        "namespace",
        "chunk_count",
        "view_count",
        "helpful_yes",
        "helpful_no",
        "indexed_at",
        "updated_at",
    )
    list_filter = ("status", "category", "language", "source", "namespace")
    search_fields = ("title", "body", "tags")
    readonly_fields = (
        "preview",
        "source",
        "source_name",
        "view_count",
        "helpful_yes",
        "helpful_no",
        "published_at",
        "indexed_at",
        "created_at",
        "updated_at",
    )
    fields = (
        "title",
        "slug",
        "status",
        "category",
        "tags",
        "language",
        "body",
        "preview",
        "source",
        "source_name",
        "view_count",
        "helpful_yes",
        "helpful_no",
        "published_at",
        "indexed_at",
    )
    actions = ("publish", "archive", "reindex")

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).select_related("category").annotate(num_chunks=Count("chunks"))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("upload/", view(self.upload_view), name="knowledge_article_upload"),
            path("upload/<int:job_id>/", view(self.upload_status_view), name="knowledge_article_upload_status"),
            path(
                "upload/<int:job_id>/progress/",
                view(self.upload_progress_view),
                name="knowledge_article_upload_progress",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Upload .md/.txt/.html/.pdf/.docx files; the worker ingests them while this page shows progress."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        error = ""
        if request.method == "POST":
            status = request.POST.get("default_status", Article.Status.DRAFT)
            if status not in Article.Status.values:
                status = Article.Status.DRAFT
            try:
                job = services.ingest_job_create(
                    files=request.FILES.getlist("files"), user=request.user, default_status=status
                )
            except services.KnowledgeRuleError as exc:
                error = str(exc)
            else:
                return HttpResponseRedirect(reverse("admin:knowledge_article_upload_status", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Upload knowledge-base files"),
            "opts": self.model._meta,
            "error": error,
            "statuses": Article.Status.choices,
            "max_files": services.MAX_UPLOAD_FILES,
        }
        return TemplateResponse(request, "admin/knowledge/article/upload.html", context, status=400 if error else 200)

    def _job(self, request: HttpRequest, job_id: int) -> IngestJob:
        if not self.has_add_permission(request):
            raise PermissionDenied
        return get_object_or_404(IngestJob, pk=job_id)

    def upload_status_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self._job(request, job_id)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Upload %(number)s") % {"number": job.pk},
            "opts": self.model._meta,
            "job": job,
        }
        return TemplateResponse(request, "admin/knowledge/article/upload_status.html", context)

    def upload_progress_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        return TemplateResponse(
            request, "admin/knowledge/article/upload_progress.html", {"job": self._job(request, job_id)}
        )

    @admin.display(description=_("Chunks"), ordering="num_chunks")
    def chunk_count(self, article: Article) -> int:
        return article.num_chunks

    @admin.display(description=_("Preview"))
    def preview(self, article: Article) -> str:
        if not article.pk:
            return gettext("Save to see the preview.")
        # render_article output is nh3-sanitised HTML: safe to embed as markup.
        return format_html('<div class="sf-article-preview">{}</div>', mark_safe(render_article(article.body)))  # noqa: S308

    def save_model(self, request, obj: Article, form, change: bool) -> None:
        try:
            saved = services.article_save(
                article=obj if change else None,
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
                status=form.cleaned_data["status"],
                category=form.cleaned_data["category"],
                tags=form.cleaned_data["tags"],
                language=form.cleaned_data["language"],
                slug=form.cleaned_data.get("slug") or "",
            )
            obj.pk = saved.pk
        except services.KnowledgeRuleError as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def delete_model(self, request, obj: Article) -> None:
        services.article_delete(article=obj)

    def _set_status(self, queryset, status: str) -> None:
        for article in queryset:
            services.article_save(
                article=article,
                title=article.title,
                body=article.body,
                status=status,
                category=article.category,
                tags=article.tags,
                language=article.language,
            )

    @admin.action(description=_("Publish"))
    def publish(self, request, queryset):
        self._set_status(queryset, Article.Status.PUBLISHED)

    @admin.action(description=_("Archive"))
    def archive(self, request, queryset):
        self._set_status(queryset, Article.Status.ARCHIVED)

    @admin.action(description=_("Re-index now"))
    def reindex(self, request, queryset):
        embedded = sum(services.article_reindex(article_id=a.pk) for a in queryset)
        articles = queryset.count()
        self.message_user(
            request,
            ngettext(
                "Re-indexed %(articles)d article; %(chunks)s chunk(s) embedded.",
                "Re-indexed %(articles)d articles; %(chunks)s chunk(s) embedded.",
                articles,
            )
            % {"articles": articles, "chunks": embedded},
        )
