"""The local triage model's seed set: labelled customer messages about Nimbus Notes, our own writing,
read from ``data/`` once per process.

Every example was written for SupportFlow (no text from public datasets, which may not be
committed). Agents' corrections are added on top at training time (``local.training_examples``).

- ``data/seed.jsonl`` → ``SEED``: ``(text, category, priority)``. Categories, each owned by one
  department (``tickets.ai.rules.CATEGORY_DEPARTMENT``):

  - billing: ``refund`` (money back, double charges), ``payment_failed`` (declined cards, failed
    renewals), ``invoice`` (copies, VAT numbers, receipts), ``plan_change`` (upgrade, downgrade, cancel,
    billing cycle)
  - technical: ``sync``, ``app_crash`` (crashes, freezes, bugs), ``import_export``, ``search``,
    ``how_to`` (using a feature: sharing, offline mode, attachments, version history, restoring notes)
  - account-security: ``sign_in`` (passwords, passkeys, SSO, locked out), ``two_factor``,
    ``account_security`` (suspicious sign-ins, hacked accounts, phishing), ``data_request`` (export all
    my data, delete my account, GDPR requests, change of e-mail address)
  - sales: ``pricing`` (what plans cost and include), ``team_plan`` (Teams for an organisation, seats,
    SSO/admin features before buying), ``discount`` (education and non-profit pricing), ``quote``
    (quotes, purchase orders, procurement paperwork)

  Priorities follow what an agent would set: ``urgent`` for an account takeover in progress, data loss
  or a whole team blocked right now; ``high`` when the customer cannot work (no sign-in, no sync, crash
  on start, failed payment locking the account); ``low`` for questions that can wait (how-to, pricing,
  paperwork); ``normal`` otherwise.
- ``data/out_of_scope.jsonl`` → ``OUT_OF_SCOPE``: messages outside every department (small talk, other
  companies' products, general knowledge); training uses them only to choose the out-of-scope
  threshold, never as a class.
- ``data/sentiment_seed.jsonl`` → ``SENTIMENT_SEED``: ``(text, sentiment)``, for the embedding view of
  sentiment (``sentiment.py`` blends it with VADER and the cues). Grouped by label (negative, neutral,
  positive); messages to any support team (travel, deliveries, banking, telecom, shops, our app), in
  the styles customers write: short, @handles, #hashtags, emoji, ALL CAPS, typos, sarcasm. Negative
  includes plain complaints without strong words and problem reports asked as questions ("Why was my
  flight cancelled? Nobody has told me anything."): that is how customers sound when something went
  wrong, and how people labelling support messages read them. Neutral is questions, requests and
  facts with nothing gone wrong yet, polite "please"/"thanks" included; positive is thanks and praise
  for something done.

The order of the lines is part of the model: the same examples in the same order give the same fit.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def read_jsonl(name: str) -> list[dict]:
    """The rows of ``data/<name>``, one JSON object a line, in file order."""
    with (DATA_DIR / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


SEED: tuple[tuple[str, str, str], ...] = tuple(
    (row["text"], row["category"], row["priority"]) for row in read_jsonl("seed.jsonl")
)
OUT_OF_SCOPE: tuple[str, ...] = tuple(row["text"] for row in read_jsonl("out_of_scope.jsonl"))
SENTIMENT_SEED: tuple[tuple[str, str], ...] = tuple(
    (row["text"], row["sentiment"]) for row in read_jsonl("sentiment_seed.jsonl")
)
