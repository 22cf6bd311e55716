"""Guardrails around the language model: an input guard against prompt injection (``rules``,
``classifier``), delimiting of untrusted text inside prompts, and checks on what the model wrote before
anyone sees it (``output``).

``scan`` combines two things. Heuristics: regular expressions for the phrasings attacks share
(English and German; French, Spanish and a few other languages for the common overrides). Each rule
has a weight, and a *strong* rule (weight ≥ ``STRONG``) flags on its own. A classifier: logistic
regression on MiniLM sentence embeddings, damped far from known examples, trained once per process
from ``data/seed.jsonl`` (our own writing), deterministically. Text is scored in sentences and
two-sentence windows (plus the whole text when short) and the highest window counts, so an
instruction hidden in the middle of a long email is not averaged away. The final score is the
noisy-OR of the rule weights and the classifier probability; the text is flagged when a strong rule
fires or the score reaches the threshold of its source.

Thresholds and the classifier's settings were chosen on the development parts of the public sets
(``manage.py eval_guard``; docs/eval-guard.md): the deciding target is ≤ 1 % false positives on real
customer texts, then recall on injections.

A flag is a signal for the pipeline, not a verdict on the customer; what it does with one is the
pipeline's decision (today: no model-generated reply to a flagged message, flagged passages left out).

Callers use the names below (``from tickets.ai import guard; guard.scan(...)``), not the modules.
"""

from __future__ import annotations

from tickets.ai.guard.classifier import (
    SOURCES,
    THRESHOLDS,
    Classifier,
    Guard,
    Verdict,
    default_guard,
    scan,
    scan_many,
    seed_anchor_count,
    seed_classifier,
    seed_examples,
    seed_vectors,
    train_classifier,
    windows,
)
from tickets.ai.guard.output import check_output, link_hosts, new_canary, wrap_untrusted
from tickets.ai.guard.rules import RULES, STRONG, heuristic_signals, normalise

__all__ = [
    "RULES",
    "SOURCES",
    "STRONG",
    "THRESHOLDS",
    "Classifier",
    "Guard",
    "Verdict",
    "check_output",
    "default_guard",
    "heuristic_signals",
    "link_hosts",
    "new_canary",
    "normalise",
    "scan",
    "scan_many",
    "seed_anchor_count",
    "seed_classifier",
    "seed_examples",
    "seed_vectors",
    "train_classifier",
    "windows",
    "wrap_untrusted",
]
