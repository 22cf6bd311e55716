"""The retrieval evaluation command (``manage.py kb_eval``) on tiny datasets written here, laid out like
the public ones (stackfaq, covid_faq_deepset), against real PostgreSQL + pgvector and the real model."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from knowledge import evaluation
from knowledge.models import Article

THREADS = [
    {
        "id": 10,
        "question": "How do I export a notebook to PDF?",
        "answers": [
            "Open the notebook, choose File → Export and pick PDF. Images and tables are kept.",
            "On mobile, tap the share icon and choose Export as PDF.",
        ],
    },
    {
        "id": 11,
        "question": "Why does sync stop at 99% on Android?",
        # One answer stored as a bare string, as the public file does for single-answer threads.
        "answers": "Clear the local cache in Settings → Sync → Reset, then sign in again so the phone re-downloads.",
    },
    {
        "id": 12,
        "question": "How can I turn on two-factor authentication?",
        "answers": ["Go to Account → Security, enable two-factor and scan the QR code with an authenticator app."],
    },
    {
        "id": 13,
        "question": "Can I get a refund for my annual plan?",
        "answers": [
            "Annual plans are refunded in full within 30 days of purchase; write to billing with your invoice."
        ],
    },
    {
        "id": 14,
        "question": "How do I share a notebook with my team?",
        "answers": ["Click Share, type your colleagues' emails and choose whether they can edit or only view."],
    },
]
QUERIES = [
    {"query": "export my notes as a pdf file", "gold_id": 10},
    {"query": "android app sync stuck at ninety nine percent", "gold_id": 11},
    {"query": "enable 2FA with an authenticator", "gold_id": 12},
    {"query": "money back for yearly subscription", "gold_id": 13},
    {"query": "let coworkers edit my notebook", "gold_id": 14},
    {"query": "*", "gold_id": 14},  # upstream placeholder for a missing paraphrase: skipped
    {"query": "phone keeps failing to sync", "gold_id": 11},
]


@pytest.fixture
def stackfaq_dir(tmp_path):
    (tmp_path / "kb.json").write_text(json.dumps(THREADS), encoding="utf-8")
    (tmp_path / "queries.json").write_text(json.dumps(QUERIES), encoding="utf-8")
    return tmp_path


def run(path, *args) -> tuple[dict, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("kb_eval", "--data", str(path), *args, stdout=out, stderr=err)
    lines = out.getvalue().strip().splitlines()
    return json.loads(lines[-1]), out.getvalue()


def test_stackfaq_threads_become_articles(stackfaq_dir):
    dataset = evaluation.load_dataset(stackfaq_dir)
    assert dataset.name == "stackfaq"
    assert len(dataset.articles) == 5
    assert len(dataset.dev) == 6  # the "*" placeholder is skipped
    assert dataset.test is None
    sync = next(a for a in dataset.articles if a.external_id == "11")
    assert sync.title == "Why does sync stop at 99% on Android?"
    assert "Clear the local cache in Settings" in sync.body  # a bare-string answer is one answer, not letters


@pytest.mark.django_db
def test_kb_eval_on_a_tiny_stackfaq(stackfaq_dir):
    Article.objects.create(title="Live article", slug="live", body="Customer-facing.", status="published")
    summary, text = run(stackfaq_dir, "--variants", "--cv")
    assert summary["dataset"] == "stackfaq"
    assert summary["queries"] == 6
    assert summary["articles"] == 5
    assert "development part" in summary["reported_on"]
    for mode in ("fts", "vector", "hybrid"):
        figures = summary["modes"][mode]
        for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "latency_ms_p50", "latency_ms_p95"):
            assert key in figures
            assert 0 <= figures[key] <= (1 if "@" in key else 60_000)
    assert summary["modes"]["hybrid"]["recall@10"] == 1.0
    assert "hybrid_at_least_best_single" in summary["targets"]
    assert "| hybrid |" in text
    # The offline re-fusion reproduces kb_search's hybrid ranking before any variant is scored.
    assert summary["variants_dev"]["reproduces_product_hybrid"] == "6/6"
    # Cross-validation: every question is scored once, out of fold, by a setting chosen without its fold.
    cv = summary["fusion_cv_dev"]
    assert sum(row["questions"] for row in cv["folds"]) == 6
    assert 0 <= cv["out_of_fold"]["recall@1"] <= 1
    assert cv["grid_overturned_ranks"]["k=20 w=10"] == 2
    assert cv["grid_overturned_ranks"]["k=10 w=3"] == 5
    assert "cross-validation" in text
    # The evaluation namespace is gone afterwards; the live knowledge base is untouched.
    assert not Article.objects.filter(namespace="eval-stackfaq").exists()
    assert Article.objects.filter(namespace="default", slug="live").exists()


@pytest.mark.django_db
def test_kb_eval_covid_layout_reports_answer_or_refuse(tmp_path):
    faqs = [
        ("How long does the virus survive on surfaces?", "Up to three days on plastic and steel, less on paper."),
        ("Should I wear a mask on the bus?", "Yes: a mask is required on public transport."),
        ("Can my dog catch the virus?", "Pets are very rarely infected; wash your hands after touching them."),
    ]
    pairs = [
        ("How long does the virus survive on surfaces?", "How long can the virus live on a door handle?", 1),
        ("Should I wear a mask on the bus?", "Is a face covering needed on public transport?", 1),
        ("Can my dog catch the virus?", "Is a face covering needed on public transport?", 0),
        ("How long does the virus survive on surfaces?", "Can cats get sick from the virus?", 0),
    ]
    with (tmp_path / "faq_covidbert.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "answer", "link"])
        writer.writerows((q, a, "https://example.org/faq") for q, a in faqs)
    with (tmp_path / "question_pairs.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["question_1", "question_2", "similar"])
        writer.writerows(pairs)
    summary, text = run(tmp_path, "--keep")
    assert summary["dataset"] == "covid_faq_deepset"
    assert (summary["queries"], summary["negatives"]) == (2, 2)
    assert Article.objects.filter(namespace="eval-covid_faq_deepset").count() == 3  # --keep
    report = summary["hard_negatives"]["hybrid_cosine"]
    assert report["table"][0]["threshold"] == 0.0
    assert report["table"][0]["pos_refused"] == 0.0
    assert report["table"][-1]["pos_refused"] + report["table"][-1]["pos_answered_correct"] > 0
    assert "two_fold_by_faq" in report  # no test file: the chosen threshold is also cross-checked
    # The negative that is also a positive pair's question is judged by that pair's FAQ.
    assert report["table"][0]["neg_other_judged_right"] + report["table"][0]["neg_other_judged_wrong"] >= 1
    assert "Answer or refuse" in text


def test_rank_metrics():
    figures = evaluation.rank_metrics([1, 2, None, 11])
    assert (figures["recall@1"], figures["recall@5"], figures["recall@10"]) == (0.25, 0.5, 0.5)
    assert figures["mrr@10"] == pytest.approx((1 + 0.5) / 4)
    assert figures["ndcg@10"] == pytest.approx((1 + 1 / 1.584962500721156) / 4)


def test_unknown_folder_and_live_namespace_are_refused(tmp_path):
    with pytest.raises(CommandError, match="unknown dataset"):
        call_command("kb_eval", "--data", str(tmp_path), stdout=io.StringIO(), stderr=io.StringIO())
    (tmp_path / "kb.json").write_text("[]", encoding="utf-8")
    (tmp_path / "queries.json").write_text("[]", encoding="utf-8")
    with pytest.raises(CommandError, match="eval-"):
        call_command(
            "kb_eval", "--data", str(tmp_path), "--namespace", "default", stdout=io.StringIO(), stderr=io.StringIO()
        )
