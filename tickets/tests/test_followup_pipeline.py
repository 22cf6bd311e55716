"""Follow-ups through the real pipeline on the demo knowledge base's own articles: a turn that leans on
the previous one is searched with the conversation, and the article whose title fits the turn itself
is the one answered from ("what if I lose my phone?" after a 2FA answer is the recovery-codes article,
not the set-up article again); an article the customer was already given is not offered as "see also"."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.services import ingest_files
from tickets.ai import pipeline
from tickets.tests.test_pipeline import ai_messages, customer_writes, world  # noqa: F401 — the fixture

DEMO_KB = Path(__file__).resolve().parents[2] / "knowledge" / "demo_kb"
SLUGS = [
    "set-up-two-factor-authentication",
    "lost-two-factor-device",
    "sign-in-with-passkeys",
    "share-notes-and-notebooks",
    "resolve-sync-conflicts",
    "move-pro-users-to-teams",
    "offline-mode",
]


@pytest.fixture
def demo_articles(world, django_capture_on_commit_callbacks):  # noqa: F811 — the imported fixture
    files = [(f"{slug}.md", (DEMO_KB / f"{slug}.md").read_bytes()) for slug in SLUGS]
    with django_capture_on_commit_callbacks(execute=True):
        report = ingest_files(files, default_status="published", source="written")
    assert not report.failed, report.failed
    return world


def _answered_from(ticket) -> list[str]:
    reply = ai_messages(ticket)[-1]
    return [c["url"].rstrip("/").rsplit("/", 1)[-1] for c in reply.citations]


@pytest.mark.parametrize(
    ("first", "first_article", "then", "then_article"),
    [
        (
            "How do I set up two-factor authentication?",
            "set-up-two-factor-authentication",
            "what if I lose my phone?",
            "lost-two-factor-device",
        ),
        (
            "How can I share a notebook with my colleague?",
            "share-notes-and-notebooks",
            "can they edit it too?",
            "share-notes-and-notebooks",
        ),
        ("Can I use the app without internet?", "offline-mode", "on mobile too?", "offline-mode"),
    ],
)
def test_a_follow_up_is_answered_from_the_article_it_is_about(demo_articles, first, first_article, then, then_article):
    message = customer_writes(first)
    assert pipeline.process_message(message_id=message.pk) == "sent"
    ticket = message.ticket
    assert _answered_from(ticket)[0] == first_article

    follow = customer_writes(then, ticket=ticket)
    outcome = pipeline.process_message(message_id=follow.pk)

    assert outcome == "sent", ticket.ai_drafts.order_by("-pk").first().gate
    cited = _answered_from(ticket)
    assert cited[0] == then_article
    if then_article != first_article:
        assert first_article not in cited  # they have it already: no "see also" back to it
