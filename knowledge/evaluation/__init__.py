"""Knowledge-base retrieval evaluation: load a public FAQ dataset into its own namespace, run every
question through ``kb_search`` in each mode, and score the article rankings.

Used by ``manage.py kb_eval`` (see docs/evaluation.md). Nothing here changes how search works: the
searches are the product's own ``kb_search`` + ``best_per_article`` calls, on a namespace that is never
public. The fusion *variants* are an offline re-scoring of the per-mode candidate lists, for diagnosis
only.

Modules, one concern each: ``datasets`` (stackfaq / covid_faq_deepset folders, sampling, splits),
``namespace`` (load and wipe the evaluation namespace), ``retrieval`` (the searches), ``metrics``,
``refusal`` (answer or refuse on the hard negatives), ``fusion`` (offline variants), ``runner`` (the
``kb_eval`` run) and ``report`` (its tables). The names below are what the commands and the other
evaluations use.
"""

from __future__ import annotations

from knowledge.evaluation.datasets import Dataset, EvalArticle, EvalQuery, load_dataset, sample, split_by_group
from knowledge.evaluation.metrics import rank_metrics
from knowledge.evaluation.namespace import check_namespace, load_namespace, wipe_namespace
from knowledge.evaluation.report import report_lines
from knowledge.evaluation.retrieval import Result, warm_up
from knowledge.evaluation.runner import run

__all__ = [
    "Dataset",
    "EvalArticle",
    "EvalQuery",
    "Result",
    "check_namespace",
    "load_dataset",
    "load_namespace",
    "rank_metrics",
    "report_lines",
    "run",
    "sample",
    "split_by_group",
    "warm_up",
    "wipe_namespace",
]
