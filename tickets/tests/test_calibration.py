"""The confidence gate calibrated per knowledge base and per queue (``tickets.ai.calibration``), on real
PostgreSQL + pgvector: a small knowledge base written here, with two near-duplicate articles."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from knowledge import services as kb_services
from tickets import services
from tickets.ai import calibration, pipeline
from tickets.models import AIDraft, Department, KnowledgeCalibration, Message
from tickets.tests.factories import CustomerFactory, SLAPolicyFactory

ARTICLES = [
    ("How do I reset my password?", "Open Sign in → Forgot password and follow the link we email you."),
    ("How can I reset my password?", "Ask your workspace admin: single sign-on accounts reset through them."),
    (
        "Export notes to Markdown",
        "## Exporting a notebook\n\nChoose ⋯ → Export → Markdown (.zip).\n\n## Attachments\n\nThey go into an "
        "assets folder beside the notes.",
    ),
    ("Why was I charged twice?", "A second charge after an upgrade is a pending authorisation, released in 5 days."),
    ("Reset sync on Android", "Open Settings → Sync → Reset local cache; your notes download again."),
]


@pytest.fixture
def kb(db, django_capture_on_commit_callbacks, settings):
    settings.FEATURE_AI_PIPELINE = False
    with django_capture_on_commit_callbacks(execute=True):
        return [
            kb_services.article_save(title=title, body=body, status="published", reindex="now")
            for title, body in ARTICLES
        ]


@pytest.fixture
def department(db):
    return Department.objects.create(name="Technical Support", slug="technical", sla_policy=SLAPolicyFactory())


def test_calibration_replays_titles_and_headings_and_is_a_no_op_until_the_kb_changes(
    kb, django_capture_on_commit_callbacks
):
    row = calibration.kb_calibrate()

    assert row is not None
    assert row.articles == 5
    assert row.pseudo_questions == 7  # five titles and the two headings of the export article
    assert row.twin_share == pytest.approx(0.4)  # the two password articles
    assert calibration.FLOOR <= row.threshold <= calibration.NEVER
    assert row.figures["expected_wrong"] <= calibration.WRONG_CAP
    assert set(row.figures["expected_wrong_at"]) == {"0.50", "0.60", "0.70", "0.80", "0.90", "0.95", "0.99"}

    again = calibration.kb_calibrate()
    assert (again.pk, again.computed_at) == (row.pk, row.computed_at)

    with django_capture_on_commit_callbacks(execute=True):
        kb_services.article_save(
            article=kb[3], title=kb[3].title, body="Refunds of a double charge take 5 days.", status="published",
            reindex="now",
        )  # fmt: skip
    changed = calibration.kb_calibrate()
    assert changed.pk == row.pk
    assert changed.computed_at > row.computed_at
    assert KnowledgeCalibration.objects.count() == 1


def test_threshold_is_the_lowest_meeting_the_cap():
    probes = [calibration.Probe(1, "q", 0.9, False, 0.55) for _ in range(50)]
    probes += [calibration.Probe(2, "q", 0.7, True, 0.8)]  # one confusable article answered at 0.7

    assert calibration.expected_wrong(probes, 0.6, miss_prior=0.0) == pytest.approx(1 / 51)
    assert calibration.choose_threshold(probes, miss_prior=0.0) == 0.5
    # at 0.7 the confused article (1/51) and a quarter of the left-out replay at 0.8 (1/51) exceed 2 %
    assert calibration.expected_wrong(probes, 0.7, miss_prior=0.25) == pytest.approx(1.25 / 51)
    assert calibration.choose_threshold(probes, miss_prior=0.25) == 0.8
    assert calibration.choose_threshold([calibration.Probe(1, "q", 1.0, True, None)]) == calibration.NEVER


def customer_asks(text: str, department: Department):
    ticket = services.ticket_create(customer=CustomerFactory(), subject=text[:60], body=text)
    ticket.department = department
    ticket.save(update_fields=["department"])
    return ticket.messages.get(seq=1)


def _gate(message: Message) -> dict:
    return AIDraft.objects.get(in_reply_to=message).gate


@pytest.mark.parametrize(
    ("mode", "manual", "calibrated", "expected", "source"),
    [
        ("auto", 0.6, None, 0.6, "default"),
        ("auto", 0.6, 0.93, 0.93, "calibrated"),
        ("manual", 0.75, 0.93, 0.75, "manual"),
    ],
)
def test_the_gate_uses_the_calibration_unless_a_manager_overrode_it(
    kb, department, monkeypatch, mode, manual, calibrated, expected, source
):
    monkeypatch.setattr("tickets.ai.pipeline.triage_apply", lambda ticket, triage, routing: ticket)
    department.ai_threshold_mode, department.ai_confidence_threshold = mode, manual
    department.save()
    if calibrated is not None:
        services.knowledge_calibration_store(
            namespace="default", threshold=calibrated, fingerprint="x", articles=5, pseudo_questions=7,
            confused_share=0.0, twin_share=0.0, wrong_cap=0.02, figures={},
        )  # fmt: skip

    message = customer_asks("How do I export my notes to Markdown?", department)
    pipeline.process_message(message_id=message.pk)

    gate = _gate(message)
    assert (gate["threshold"], gate["threshold_source"]) == (expected, source)
    sent = gate["reply"] == "answer" and AIDraft.objects.get(in_reply_to=message).status == "sent"
    assert sent == (gate["confidence"] >= expected)


def test_a_manual_threshold_sends_what_the_calibrated_one_holds_back(kb, department, monkeypatch):
    monkeypatch.setattr("tickets.ai.pipeline.triage_apply", lambda ticket, triage, routing: ticket)
    department.ai_threshold_mode = "auto"
    department.save()
    services.knowledge_calibration_store(
        namespace="default", threshold=calibration.NEVER, fingerprint="x", articles=5, pseudo_questions=7,
        confused_share=0.0, twin_share=0.0, wrong_cap=0.02, figures={},
    )  # fmt: skip
    held = customer_asks("How do I export my notes to Markdown?", department)
    pipeline.process_message(message_id=held.pk)
    assert _gate(held)["reply"] == "clarify"
    assert _gate(held)["answer_citations"]

    department.ai_threshold_mode, department.ai_confidence_threshold = "manual", 0.05
    department.save()
    sent = customer_asks("How do I export my notes to Markdown?", department)
    assert pipeline.process_message(message_id=sent.pk) == "sent"
    assert _gate(sent)["threshold_source"] == "manual"


def _answers(department: Department, confidences_and_votes: list[tuple[float, str]]) -> None:
    ticket = services.ticket_create(customer=CustomerFactory(), subject="q", body="q")
    ticket.department = department
    ticket.save(update_fields=["department"])
    for seq, (confidence, vote) in enumerate(confidences_and_votes, start=100):
        Message.objects.create(
            ticket=ticket, seq=seq, author_kind="ai", body="an answer", ai_confidence=confidence, feedback=vote
        )


def test_no_votes_at_a_confidence_raise_the_queues_threshold(department):
    department.ai_threshold_mode = "auto"
    department.save()
    # 40 answers at 0.60–0.99; three "No" votes at 0.62, 0.64, 0.66. The cap is 2 % of 40 = 0.8 answers,
    # so no "No" may remain at or above the threshold: 0.67
    votes = [(0.6 + i * 0.01, "no" if i in (2, 4, 6) else ("yes" if i % 5 == 0 else "")) for i in range(40)]
    _answers(department, votes)

    threshold = calibration.department_feedback_calibrate(department=department)

    department.refresh_from_db()
    assert threshold == pytest.approx(0.67)
    assert department.ai_feedback_figures["answers"] == 40
    assert department.ai_feedback_figures["no_votes"] == 3
    assert department.threshold_in_use(0.6) == (pytest.approx(0.67), "votes")
    assert department.threshold_in_use(0.9) == (0.9, "calibrated")
    department.ai_threshold_mode = "manual"
    assert department.threshold_in_use(0.6) == (0.6, "manual")


def test_few_answers_or_few_no_votes_leave_the_threshold_alone(department):
    _answers(department, [(0.7, "no")] * 5)
    assert calibration.department_feedback_calibrate(department=department) is None
    _answers(department, [(0.7, "")] * 95)  # 100 answers, 5 "No": 5 % — all at one confidence
    assert calibration.department_feedback_calibrate(department=department) == calibration.NEVER
    assert calibration.feedback_threshold([(0.7, False)] * 99 + [(0.7, True)]) is None


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_every_queues_threshold_as_it_was():
    executor = MigrationExecutor(connection)
    before = [("tickets", "0008_conversation_state_feedback_and_handover_rules")]
    after = [("tickets", "0009_gate_calibration_threshold_mode")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("tickets", "Department")
    old.objects.create(name="Billing", slug="billing", ai_confidence_threshold=0.6)
    old.objects.create(name="Sales", slug="sales", ai_confidence_threshold=0.8)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    # the schema as the rest of the suite expects it: every later migration applied again
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert dict(Department.objects.values_list("slug", "ai_threshold_mode")) == {"billing": "manual", "sales": "manual"}
    assert Department.objects.get(slug="billing").threshold_in_use(0.95) == (0.6, "manual")
    assert Department.objects.get(slug="sales").threshold_in_use(0.95) == (0.8, "manual")


def test_the_department_page_shows_the_calibration_and_whether_it_is_overridden(department, admin_client):
    department.ai_threshold_mode = "auto"
    department.save()
    services.knowledge_calibration_store(
        namespace="default", threshold=0.913, fingerprint="x", articles=5, pseudo_questions=7,
        confused_share=0.143, twin_share=0.4, wrong_cap=0.02, figures={"expected_wrong_at": {"0.60": 0.08}},
    )  # fmt: skip
    page = admin_client.get(reverse("admin:tickets_department_change", args=[department.pk])).content.decode()
    assert "0.913 (calibrated)" in page
    assert "14.3 % answered by another article" in page
    assert "expected wrong at 0.6: 8.0 %" in page
    assert "Overridden" not in page

    department.ai_threshold_mode = "manual"
    department.save()
    listing = admin_client.get(reverse("admin:tickets_department_changelist")).content.decode()
    assert "0.600 (manual)" in listing
