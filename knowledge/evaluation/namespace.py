"""The evaluation namespace: the dataset's articles saved and indexed exactly as production does, in a
namespace of their own that is never public and is wiped before and after a run."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import transaction

from knowledge import services
from knowledge.evaluation.datasets import EvalArticle
from knowledge.models import DEFAULT_NAMESPACE, Article, Chunk
from supportflow.evaluation import DatasetError


def check_namespace(namespace: str) -> None:
    if namespace == DEFAULT_NAMESPACE or not namespace.startswith("eval-") or len(namespace) > 50:
        raise DatasetError(f"namespace {namespace!r}: evaluation namespaces start with 'eval-' (at most 50 chars).")


def wipe_namespace(namespace: str) -> int:
    check_namespace(namespace)
    deleted, _ = Article.objects.filter(namespace=namespace).delete()
    return deleted


def load_namespace(
    namespace: str, articles: Sequence[EvalArticle], *, progress: Callable[[int], None] | None = None
) -> dict[int, str]:
    """Wipe ``namespace``, save every article as published there and index it with the product's own
    ``article_reindex`` (same chunking, embedding text and hashes as production). Returns
    {article pk: external id}."""
    wipe_namespace(namespace)
    pk_to_external = {}
    for done, item in enumerate(articles, start=1):
        with transaction.atomic():
            article = services.article_save(
                title=item.title,
                body=item.body,
                status=Article.Status.PUBLISHED,
                namespace=namespace,
                external_id=item.external_id,
                source_name=item.link[:255],
                reindex="none",
            )
        services.article_reindex(article_id=article.pk)
        pk_to_external[article.pk] = item.external_id
        if progress is not None:
            progress(done)
    return pk_to_external


def namespace_chunks(namespace: str) -> int:
    return Chunk.objects.filter(namespace=namespace).count()
