"""The demo's words, loaded once from the data files beside this module (``data/*.json``): what customers
write, what agents answer, the names customers have, the demo queues, staff and conversations. The code
that uses them holds no text of its own."""

from __future__ import annotations

import json
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def _load(name: str):
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


# --- what customers write ----------------------------------------------------------------------------

# Placeholders in the texts: {p} platform, {v} version, {a} amount, {n} a number, {first} a first name.
_placeholders = _load("placeholders.json")
PLATFORMS: list[str] = _placeholders["platforms"]
VERSIONS: list[str] = _placeholders["versions"]
AMOUNTS: list[str] = _placeholders["amounts"]

# category: [(subject, body)]
QUESTIONS: dict[str, list[tuple[str, str]]] = {
    category: [(q["subject"], q["body"]) for q in questions] for category, questions in _load("questions.json").items()
}
# A smaller set in other languages: language: [(category, subject, body)].
QUESTIONS_I18N: dict[str, list[tuple[str, str, str]]] = {
    language: [(q["category"], q["subject"], q["body"]) for q in questions]
    for language, questions in _load("questions_i18n.json").items()
}
# Questions the knowledge base has no answer for, in a few words each: analytics groups them into gaps.
# topic: (nearest category, [paraphrases])
GAP_TOPICS: dict[str, tuple[str, list[str]]] = {
    topic: (gap["category"], gap["paraphrases"]) for topic, gap in _load("gap_topics.json").items()
}

_customer = _load("customer_phrases.json")
GREETINGS: list[str] = _customer["greetings"]
SIGN_OFFS: list[str] = _customer["sign_offs"]
HUMAN_ASK: list[str] = _customer["human_ask"]
LEGAL_THREAT: list[str] = _customer["legal_threat"]
ANGRY: list[str] = _customer["angry"]
FOLLOW_UP_UNHELPFUL: list[str] = _customer["follow_up_unhelpful"]
FOLLOW_UP_HUMAN: list[str] = _customer["follow_up_human"]
ACKS: list[str] = _customer["acks"]
CUSTOMER_INFO: list[str] = _customer["customer_info"]
CUSTOMER_DONE: list[str] = _customer["customer_done"]
REOPEN: list[str] = _customer["reopen"]

# --- what agents and the AI write ----------------------------------------------------------------------

_agent = _load("agent_phrases.json")
AGENT_ASK: list[str] = _agent["agent_ask"]
AGENT_ANSWER: dict[str, str] = _agent["agent_answer"]  # department slug ("" for any other) -> answer
AGENT_DONE: list[str] = _agent["agent_done"]
AGENT_I18N: dict[str, str] = _agent["agent_i18n"]
NOTES: list[str] = _agent["notes"]
CSAT_COMMENTS: dict[int, list[str]] = {int(score): texts for score, texts in _agent["csat_comments"].items()}
AI_HOLDING_REPLY: str = _agent["ai_holding_reply"]  # the draft when no passage answers
AI_STEP: str = _agent["ai_step"]  # the body of an AI answer, between the intro and the citations

# category -> demo knowledge-base articles (file stems) that answer it; cited when they exist.
CATEGORY_ARTICLES: dict[str, list[str]] = _load("category_articles.json")

# --- who writes -------------------------------------------------------------------------------------------

_customers = _load("customers.json")
FIRST_NAMES: list[str] = _customers["first_names"]
LAST_NAMES: list[str] = _customers["last_names"]
DOMAINS: list[str] = _customers["domains"]

# --- seed_demo's queues, staff and conversations --------------------------------------------------------

QUEUES: list[dict] = _load("queues.json")  # name, slug, description, calendar ("24x7" or "business")
STAFF: list[dict] = _load("staff.json")  # username, first_name, role ("agents", "managers" or null), ...
CONVERSATIONS: list[dict] = _load("conversations.json")
MACROS: list[dict] = _load("macros.json")  # name, owner (username or null: shared), department slug, body, actions
# Console workflows: tickets agents opened for customers (calls, visits, forwarded emails) and one customer's
# duplicate tickets, one pair merged and one left to merge.
CONSOLE: dict = _load("console.json")
# The website widget's demo site: its public key, the origins that may embed it (tools/widget-demo), its queue.
WIDGET_SITE: dict = _load("widget.json")
