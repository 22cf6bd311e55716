"""Writes to the knowledge base: saving and deleting articles, (re)indexing them, ingesting files."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import SuspiciousOperation
from django.core.files.storage import storages
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext

from knowledge import chunking, embeddings
from knowledge.ingest import Document, IngestError, parse
from knowledge.models import DEFAULT_NAMESPACE, Article, Category, Chunk
from supportflow.storage import STORAGE_ERRORS, StorageUnavailable, is_missing

logger = logging.getLogger(__name__)

FTS_CONFIGS = {
    "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
    "nl": "dutch", "pt": "portuguese", "sv": "swedish", "da": "danish", "fi": "finnish",
}  # fmt: skip


class KnowledgeRuleError(Exception):
    """A request that breaks a knowledge-base rule; the message is safe to show."""


def fts_config(language: str) -> str:
    """The PostgreSQL text-search configuration for a language code ('simple' when unknown)."""
    return FTS_CONFIGS.get((language or "").split("-")[0].lower(), "simple")


def _unique_slug(namespace: str, base: str, exclude_pk: int | None) -> str:
    base = (slugify(base) or "article")[:240]
    slug, n = base, 1
    taken = Article.objects.filter(namespace=namespace).exclude(pk=exclude_pk)
    while taken.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def category_for(name: str) -> Category | None:
    name = (name or "").strip()
    if not name:
        return None
    category, _ = Category.objects.get_or_create(slug=slugify(name)[:100] or "general", defaults={"name": name[:100]})
    return category


@transaction.atomic
def article_save(
    *,
    article: Article | None = None,
    title: str,
    body: str,
    status: str = Article.Status.DRAFT,
    category: Category | None = None,
    tags: Iterable[str] = (),
    language: str = "en",
    source: str = Article.Source.WRITTEN,
    source_name: str = "",
    slug: str = "",
    namespace: str = DEFAULT_NAMESPACE,
    external_id: str = "",
    reindex: str = "async",
) -> Article:
    """Create or update an article and schedule its re-index on commit.

    ``reindex``: "async" (a Celery task), "now" (in this process, after commit) or "none" (the
    caller indexes in bulk). Visibility changes take effect at once: chunks of an article that
    stops being public are hidden in this transaction, before any re-index runs.
    """
    title = " ".join((title or "").split())[:255]
    if not title:
        raise KnowledgeRuleError("An article needs a title.")
    if not (body or "").strip():
        raise KnowledgeRuleError("An article needs a body.")
    if status not in Article.Status.values:
        raise KnowledgeRuleError(f"Unknown status {status!r}.")
    article = article or Article(namespace=namespace)
    article.title, article.body, article.status = title, body.replace("\x00", ""), status
    article.category, article.tags = category, [t.strip()[:50] for t in tags if t.strip()]
    article.language, article.source, article.source_name = (language or "en")[:16], source, source_name[:255]
    article.external_id = external_id[:100]
    article.slug = (
        _unique_slug(article.namespace, slug or title, article.pk) if (slug or not article.slug) else article.slug
    )
    if status == Article.Status.PUBLISHED and article.published_at is None:
        article.published_at = timezone.now()
    article.save()
    Chunk.objects.filter(article=article).update(is_public=article.is_public)
    transaction.on_commit(lambda ns=article.namespace: kb_version_bump(namespace=ns))
    if reindex == "async":
        from knowledge.tasks import reindex_article

        transaction.on_commit(lambda pk=article.pk: reindex_article.delay(pk))
    elif reindex == "now":
        transaction.on_commit(lambda pk=article.pk: article_reindex(article_id=pk))
    return article


def article_delete(*, article: Article) -> None:
    """Deleting an article removes its chunks with it (same transaction): it is gone from search at once."""
    namespace = article.namespace
    article.delete()
    transaction.on_commit(lambda: kb_version_bump(namespace=namespace))


def kb_version_bump(*, namespace: str = DEFAULT_NAMESPACE) -> None:
    """A new knowledge-base version (``selectors.kb_version``): cached retrievals and answers keyed on the old
    one are not read again. Called after the change is committed, so a reader that sees the new version
    also sees the change. A cache outage is logged: the caches' TTL then bounds how long stale entries live."""
    from django.core.cache import cache

    from knowledge.selectors import KB_VERSION_PREFIX

    key = f"{KB_VERSION_PREFIX}{namespace}"
    try:
        try:
            cache.incr(key)
        except ValueError:  # no counter yet (or it was evicted): start from the clock, past any old value
            if not cache.add(key, time.time_ns(), timeout=None):
                cache.incr(key)
    except Exception as exc:
        logger.warning("knowledge-base version not bumped for %s: %s", namespace, type(exc).__name__)


def _embedding_text(article: Article, piece: chunking.Chunk) -> str:
    return "\n".join(part for part in (article.title, piece.heading_path, piece.text) if part)


def article_reindex(*, article_id: int) -> int:
    """Rebuild an article's chunks; embeddings of unchanged text are reused. Returns texts embedded.

    Idempotent: running it twice leaves the same chunks and embeds nothing the second time. No
    transaction is held while the model runs.
    """
    article = Article.objects.filter(pk=article_id).first()
    if article is None:
        return 0
    pieces = chunking.chunk_markdown(article.body)
    texts = [_embedding_text(article, piece) for piece in pieces]
    hashes = [embeddings.content_hash(text) for text in texts]
    known = dict(
        Chunk.objects.filter(content_hash__in=set(hashes), embedding__isnull=False)
        .values_list("content_hash", "embedding")
        .distinct("content_hash")
        .order_by("content_hash")
    )
    missing = [i for i, h in enumerate(hashes) if h not in known]
    vectors = embeddings.embed([texts[i] for i in missing]) if missing else []
    for i, vector in zip(missing, vectors, strict=True):
        known[hashes[i]] = vector
    with transaction.atomic():
        article = Article.objects.select_for_update().filter(pk=article_id).first()
        if article is None:
            return 0
        Chunk.objects.filter(article=article).delete()
        Chunk.objects.bulk_create(
            Chunk(
                article=article,
                namespace=article.namespace,
                is_public=article.is_public,
                language=article.language,
                position=piece.position,
                heading_path=piece.heading_path[:500],
                text=piece.text,
                char_start=piece.start,
                char_end=piece.end,
                token_count=piece.tokens,
                content_hash=content_hash,
                embedding=known[content_hash],
            )
            for piece, content_hash in zip(pieces, hashes, strict=True)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE knowledge_chunk SET search_vector =
                    setweight(to_tsvector(%s::regconfig, %s || ' ' || heading_path), 'A')
                    || setweight(to_tsvector(%s::regconfig, text), 'B')
                WHERE article_id = %s
                """,
                [fts_config(article.language), article.title, fts_config(article.language), article.pk],
            )
        Article.objects.filter(pk=article.pk).update(indexed_at=timezone.now())
        transaction.on_commit(lambda ns=article.namespace: kb_version_bump(namespace=ns))
    return len(missing)


def article_reindex_stale(*, limit: int = 200) -> int:
    """Re-index articles changed since their last indexing (or never indexed): catches a save whose
    on-commit re-index was lost (worker down, broker full). Nightly beat; idempotent. Returns articles."""
    stale = Article.objects.filter(Q(indexed_at__isnull=True) | Q(updated_at__gt=F("indexed_at"))).values_list(
        "pk", flat=True
    )
    done = 0
    for pk in list(stale[:limit]):
        article_reindex(article_id=pk)
        done += 1
    return done


@dataclass
class IngestReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    embedded: int = 0

    @property
    def ok(self) -> int:
        return len(self.created) + len(self.updated)


def document_save(
    *,
    document: Document,
    namespace: str = DEFAULT_NAMESPACE,
    default_status: str = Article.Status.DRAFT,
    source: str = Article.Source.UPLOAD,
    reindex: str = "async",
) -> tuple[Article, bool]:
    """Save a parsed document as an article: the same file name (or front-matter slug) updates it."""
    slug = slugify(document.slug or Path(document.source_name).stem or document.title)[:240]
    existing = Article.objects.filter(namespace=namespace, slug=slug).first()
    status = document.status if document.status in Article.Status.values else default_status
    article = article_save(
        article=existing,
        title=document.title,
        body=document.body,
        status=status,
        category=category_for(document.category),
        tags=document.tags,
        language=document.language,
        source=source,
        source_name=document.source_name,
        slug=slug,
        namespace=namespace,
        reindex=reindex,
    )
    return article, existing is None


def ingest_files(
    files: Iterable[tuple[str, bytes]],
    *,
    namespace: str = DEFAULT_NAMESPACE,
    default_status: str = Article.Status.DRAFT,
    source: str = Article.Source.UPLOAD,
    progress: Callable[[str, int], None] | None = None,
) -> IngestReport:
    """Parse, save and index each file; a bad file is reported and the rest go on."""
    report = IngestReport()
    for index, (name, data) in enumerate(files, start=1):
        try:
            document = parse(name, data)
            article, created = document_save(
                document=document, namespace=namespace, default_status=default_status, source=source, reindex="none"
            )
            report.embedded += article_reindex(article_id=article.pk)
            (report.created if created else report.updated).append(name)
        except (IngestError, KnowledgeRuleError) as exc:
            report.failed.append((name, str(exc)))
        if progress is not None:
            progress(name, index)
    return report


# --- Readers: views, votes, suggestions -------------------------------------------------------------


def article_record_view(*, article: Article) -> None:
    from django.db.models import F

    Article.objects.filter(pk=article.pk).update(view_count=F("view_count") + 1)


def article_vote(*, article: Article, visitor: str, helpful: bool) -> bool:
    """Record a visitor's answer once; returns False (and changes nothing) if they already answered."""
    from django.db import IntegrityError
    from django.db.models import F

    from knowledge.models import ArticleVote

    try:
        with transaction.atomic():
            ArticleVote.objects.create(article=article, visitor=visitor[:64], helpful=helpful)
            field_name = "helpful_yes" if helpful else "helpful_no"
            Article.objects.filter(pk=article.pk).update(**{field_name: F(field_name) + 1})
    except IntegrityError:
        return False
    return True


def suggestions_record(*, hits, place: str, query: str, ticket=None) -> list:
    """Store that these articles were shown; returns the impressions (their ids sign the click links)."""
    from knowledge.models import SuggestionImpression

    return SuggestionImpression.objects.bulk_create(
        SuggestionImpression(article_id=hit.article_id, ticket=ticket, place=place, query=query[:200], rank=rank)
        for rank, hit in enumerate(hits, start=1)
    )


def suggestion_record_click(*, impression_id: int) -> None:
    from knowledge.models import SuggestionImpression

    SuggestionImpression.objects.filter(pk=impression_id, clicked_at__isnull=True).update(clicked_at=timezone.now())


# --- Uploads from the console --------------------------------------------------------------------

MAX_UPLOAD_FILES = 20


def _upload_key(job_id: int, stored: str) -> str:
    """Where an uploaded file waits for the worker in the ``"default"`` storage (``MEDIA_ROOT`` or the
    bucket); never served."""
    return f"kb_uploads/{job_id}/{stored}"


def _upload_name(index: int, name: str) -> str:
    """The file's name in the job's folder: its last 120 characters, and at most 200 bytes in UTF-8
    (file systems limit names to 255 bytes, and 120 characters of CJK or emoji are up to 480)."""
    name = Path(name).name[-120:]
    while len(name.encode("utf-8", "surrogatepass")) > 200:
        name = name[1:]
    return f"{index:02d}-{name}"


def ingest_job_create(*, files: list, user, default_status: str = Article.Status.DRAFT):
    """Validate and store an upload, then queue it for the worker (on commit). Files are kept in a
    private folder (never served) until the job is processed."""
    from knowledge.ingest import MAX_BYTES, SUPPORTED
    from knowledge.models import IngestJob
    from knowledge.tasks import run_ingest_job

    if not files:
        raise KnowledgeRuleError("Choose at least one file to upload.")
    if len(files) > MAX_UPLOAD_FILES:
        raise KnowledgeRuleError(f"Upload at most {MAX_UPLOAD_FILES} files at a time; you chose {len(files)}.")
    problems = []
    for upload in files:
        suffix = Path(upload.name).suffix.lower()
        if suffix not in SUPPORTED:
            problems.append(
                f"{upload.name}: {suffix or 'no extension'} is not supported (.md, .txt, .html, .pdf, .docx)."
            )
        elif upload.size > MAX_BYTES:
            problems.append(f"{upload.name}: {upload.size / 1e6:.1f} MB is over the {MAX_BYTES // 1_000_000} MB limit.")
    if problems:
        raise KnowledgeRuleError(" ".join(problems))
    files_store = storages["default"]
    with transaction.atomic():
        job = IngestJob.objects.create(created_by=user, default_status=default_status)
        names: list[str] = []
        try:
            for index, upload in enumerate(files):
                safe = _upload_name(index, upload.name)
                files_store.save(_upload_key(job.pk, safe), upload)
                names.append(safe)
        except STORAGE_ERRORS as exc:  # the job is rolled back; the files stored so far go with it
            logger.exception("knowledge-base upload could not be stored")
            for safe in names:
                with contextlib.suppress(*STORAGE_ERRORS):
                    files_store.delete(_upload_key(job.pk, safe))
            raise KnowledgeRuleError(
                gettext("The files could not be stored; nothing was uploaded. Try again in a minute.")
            ) from exc
        job.files = names
        job.save(update_fields=["files"])
        transaction.on_commit(lambda: run_ingest_job.delay(job.pk))
    return job


def _upload_read(files_store, key: str) -> bytes | None:
    """The uploaded file's bytes (read whole: pypdf and python-docx parse from memory, so a bucket
    needs no local copy), ``None`` when it is gone; ``StorageUnavailable`` when the store fails."""
    try:
        with files_store.open(key, "rb") as handle:
            return handle.read()
    except (*STORAGE_ERRORS, SuspiciousOperation) as exc:
        if is_missing(exc):
            return None
        raise StorageUnavailable(f"{key} could not be read: {exc}") from exc


def ingest_job_run(*, job_id: int) -> None:
    """Process a queued upload, recording progress after each file. Re-running skips done files.

    Raises ``StorageUnavailable`` when the file store fails (the file is neither recorded nor deleted;
    the task retries). A file that is gone is recorded as failed."""
    from django.db.models import F

    from knowledge.models import IngestJob

    IngestJob.objects.filter(pk=job_id, status=IngestJob.Status.QUEUED).update(status=IngestJob.Status.RUNNING)
    job = IngestJob.objects.get(pk=job_id)
    files_store = storages["default"]
    for stored in job.files[job.done :]:
        original = stored[3:]
        key = _upload_key(job.pk, stored)
        data = _upload_read(files_store, key)
        try:
            if data is None:
                raise FileNotFoundError(gettext("the uploaded file is no longer stored"))
            report = ingest_files([(original, data)], default_status=job.default_status, source=Article.Source.UPLOAD)
            if report.failed:
                entry = {"name": original, "outcome": "failed", "message": report.failed[0][1]}
            else:
                entry = {
                    "name": original,
                    "outcome": "created" if report.created else "updated",
                    "message": f"{report.embedded} chunk(s) embedded",
                }
        except OSError as exc:
            entry = {"name": original, "outcome": "failed", "message": f"{original}: could not be read ({exc})."}
        with transaction.atomic():
            locked = IngestJob.objects.select_for_update().get(pk=job.pk)
            IngestJob.objects.filter(pk=job.pk).update(results=[*locked.results, entry], done=F("done") + 1)
        try:
            files_store.delete(key)
        except STORAGE_ERRORS as exc:  # processed and recorded: a leftover file is harmless
            logger.warning("uploaded file %s could not be deleted: %s", key, exc)
    IngestJob.objects.filter(pk=job.pk).update(status=IngestJob.Status.DONE, finished_at=timezone.now())


def chunk_injection_verdicts_save(*, verdicts: dict[int, tuple[bool, float]]) -> None:
    """Store the injection guard's verdict ``{chunk_id: (flagged, score)}`` on each passage, so every
    worker scans a passage once, ever (re-indexing an article makes new, unscanned chunks)."""
    rows = [Chunk(pk=pk, injection_flagged=flagged, injection_score=score) for pk, (flagged, score) in verdicts.items()]
    Chunk.objects.bulk_update(rows, ["injection_flagged", "injection_score"])
