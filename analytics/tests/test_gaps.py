"""Knowledge gaps on real embeddings: unanswered questions grouped by meaning, answered ones left out."""

from __future__ import annotations

import pytest

from analytics import gaps
from analytics.models import KnowledgeGap
from tickets import services
from tickets.models import AIDraft
from tickets.tests.factories import CustomerFactory, DepartmentFactory

pytestmark = pytest.mark.django_db

UNANSWERED = [
    "Is there a Linux desktop app?",
    "Do you have a version of the app for Ubuntu Linux?",
    "Can I install the desktop client on Linux?",
    "Can I pay with PayPal?",
    "Do you accept PayPal payments?",
    "What is the weather like in Lisbon?",
]


def ask(text: str, *, confidence: float, citations=(), department=None, gate=None) -> None:
    ticket = services.ticket_create(customer=CustomerFactory(), subject=text[:60], body=text, department=department)
    AIDraft.objects.create(
        ticket=ticket, in_reply_to=ticket.messages.get(seq=1), body="draft", confidence=confidence,
        provider="local", citations=list(citations), gate=gate or {},
    )  # fmt: skip


def test_unanswered_questions_are_grouped_by_meaning():
    tech = DepartmentFactory(name="Technical Support")
    for text in UNANSWERED:
        ask(text, confidence=0.2, department=tech)
    ask("How do I reset my password?", confidence=0.9, citations=[{"n": 1}])  # answered well: not a gap
    for _ in range(3):  # acknowledgements are not questions
        ask("Perfect, thank you.", confidence=0.0, gate={"acknowledged": True})

    assert gaps.refresh() == 2
    linux, paypal = KnowledgeGap.objects.order_by("-size", "label")
    assert linux.size == 3
    assert "Linux" in linux.label
    assert set(linux.examples) == set(UNANSWERED[:3])
    assert linux.departments == ["Technical Support"]
    assert paypal.size == 2
    assert "PayPal" in paypal.label
    assert not KnowledgeGap.objects.filter(examples__contains=["How do I reset my password?"]).exists()


def test_a_regroup_keeps_the_draft_of_a_group_that_stays():
    for text in UNANSWERED[:3]:
        ask(text, confidence=0.1)
    gaps.refresh()
    article = gaps.draft_article(gap=KnowledgeGap.objects.get())
    gaps.refresh()
    assert KnowledgeGap.objects.get().article == article


def test_grouping_does_not_depend_on_the_order():
    import numpy as np

    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.96, 0.28], [0.6, 0.8]])
    assert gaps.group(vectors, similarity=0.9) == [[0, 2], [1], [3]]
    assert gaps.group(vectors[::-1], similarity=0.9) == [[1, 3], [0], [2]]
    assert gaps.group(vectors[:0]) == []
