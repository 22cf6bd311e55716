"""The triage model registry: the promotion gate on held-out examples, one-click promote and rollback
(managers only, audited), and workers picking up the active version without a restart."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from tickets import services
from tickets.ai.triage import local as triage_local
from tickets.ai.triage import registry
from tickets.ai.triage.step import triage_message
from tickets.models import TriageModel
from tickets.tests.factories import DepartmentFactory, make_agent, make_manager, make_ticket

ROLLBACK_URL = "admin:tickets_triagemodel_rollback"
CHANGELIST_URL = "admin:tickets_triagemodel_changelist"
TEXT = "Where can I download last month's invoice with our company address on it?"


@pytest.fixture(autouse=True)
def _no_model_loaded_yet():
    triage_local.clear_cache()
    yield
    triage_local.clear_cache()


def shuffled_seed() -> list[triage_local.Example]:
    """The seed with every label moved to another text: a retrain that learnt nothing true."""
    seed = [e for e in triage_local.seed_examples() if e.category]
    rng = random.Random(7)
    columns = {name: [e.label(name) for e in seed] for name in triage_local.FIELDS}
    for labels in columns.values():
        rng.shuffle(labels)
    return [replace(e, **{name: columns[name][i] for name in columns}) for i, e in enumerate(seed)]


def _train(django_capture_on_commit_callbacks, **kwargs) -> TriageModel:
    with django_capture_on_commit_callbacks(execute=True):
        return triage_local.train(**kwargs)


def _status(*rows: TriageModel) -> list[tuple[int, str, bool]]:
    return [(r.version, r.status, r.is_active) for r in TriageModel.objects.filter(pk__in=[r.pk for r in rows])]


# --- the held-out split ---------------------------------------------------------------------------


def test_the_held_out_corrections_are_the_same_on_every_split(settings):
    settings.TRIAGE_HOLDOUT_PERCENT, settings.TRIAGE_HOLDOUT_MIN_CORRECTIONS = 20, 10
    seed = triage_local.seed_examples()[:5]
    corrections = [
        triage_local.Example(text=f"t{n}", category="refund", source="correction", ticket_id=n) for n in range(400)
    ]

    training, held = registry.split(seed + corrections)
    again, held_again = registry.split(list(reversed(corrections)) + seed)

    assert {e.ticket_id for e in held} == {e.ticket_id for e in held_again}
    assert 40 <= len(held) <= 120  # about a fifth of 400
    assert not {e.ticket_id for e in held} & {e.ticket_id for e in training if e.source == "correction"}
    assert len(training) == 405 - len(held) == len(again)
    assert registry.split(seed + corrections[:9]) == (seed + corrections[:9], [])  # under the minimum: all teach


@pytest.mark.django_db
def test_held_out_corrections_are_not_trained_on_but_scored(settings, django_capture_on_commit_callbacks):
    settings.TRIAGE_HOLDOUT_PERCENT, settings.TRIAGE_HOLDOUT_MIN_CORRECTIONS = 50, 1
    sales = DepartmentFactory(name="Sales", slug="sales")
    agent = make_agent(sales)
    tickets = [make_ticket(body=f"Quote for {n} seats of the team plan, please.") for n in range(6)]
    for ticket in tickets:
        services.ticket_update_triage(ticket=ticket, actor=agent, department=sales, category="quote")
    held = sum(registry.is_held_out(t.pk) for t in tickets)

    row = _train(django_capture_on_commit_callbacks)

    assert (row.trained_on["corrections"], row.trained_on["held_out_corrections"]) == (6 - held, held)
    assert row.evaluation["candidate"]["examples"]["held_out_corrections"] == held
    assert row.evaluation["candidate"]["category"]["n"] == row.evaluation["candidate"]["examples"]["seed"] + held


# --- the gate -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_retrain_on_shuffled_labels_is_rejected_and_the_active_model_stays(django_capture_on_commit_callbacks):
    first = _train(django_capture_on_commit_callbacks)
    assert triage_local.predict(TEXT).model_version == first.version

    degraded = _train(django_capture_on_commit_callbacks, examples=shuffled_seed())

    assert _status(first, degraded) == [(2, "rejected", False), (1, "active", True)]
    assert degraded.reason.startswith("Rejected: worse than the active version")
    assert degraded.evaluation["active_version"] == 1
    assert degraded.evaluation["candidate"]["category"]["macro_f1"] < 0.5
    assert degraded.evaluation["active"]["category"]["macro_f1"] > 0.9
    assert degraded.evaluated_at is not None
    assert triage_local.predict(TEXT).model_version == 1


@pytest.mark.django_db
def test_a_retrain_as_good_as_the_active_one_is_promoted_and_workers_switch_at_once(
    django_capture_on_commit_callbacks,
):
    first = _train(django_capture_on_commit_callbacks)
    assert triage_local.predict(TEXT).model_version == 1  # loaded: the 30 s re-check alone would keep v1

    second = _train(django_capture_on_commit_callbacks)

    assert _status(first, second) == [(2, "active", True), (1, "retired", False)]
    assert second.reason.startswith("Promoted: no head's held-out macro-F1")
    assert second.evaluation["candidate"]["department"] == second.evaluation["active"]["department"]
    assert triage_local.predict(TEXT).model_version == 2


@pytest.mark.django_db
def test_a_version_stored_without_activation_is_a_candidate(django_capture_on_commit_callbacks):
    first = _train(django_capture_on_commit_callbacks)
    stored = _train(django_capture_on_commit_callbacks, activate=False)

    assert _status(first, stored) == [(2, "candidate", False), (1, "active", True)]
    assert stored.evaluation == {}


# --- a manager's one-click actions ----------------------------------------------------------------


def _csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _post(client: Client, url: str):
    """A POST as the console page sends it: the CSRF token of the list page in the form."""
    page = client.get(reverse(CHANGELIST_URL))
    return client.post(url, {"csrfmiddlewaretoken": page.context["csrf_token"]})


@pytest.mark.django_db
def test_rollback_restores_the_previous_version_and_the_pipeline_uses_it(django_capture_on_commit_callbacks):
    manager = make_manager()
    first = _train(django_capture_on_commit_callbacks)
    second = _train(django_capture_on_commit_callbacks)
    ticket = make_ticket(body=TEXT)
    message = ticket.messages.get()
    assert triage_message(ticket, message, TEXT, injection=False)["model"] == "triage-local-v2"

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(_csrf_client(manager), reverse(ROLLBACK_URL))

    assert response.status_code == 302
    assert _status(first, second) == [(2, "rejected", False), (1, "active", True)]
    later = services.message_create(ticket=ticket, author_kind="customer", body="Also the one from May, please.")
    assert triage_message(ticket, later, TEXT, injection=False)["model"] == "triage-local-v1"
    entry = LogEntry.objects.get(object_id=str(first.pk))
    assert (entry.user, entry.change_message) == (manager, "Rolled back from v2 to v1.")
    assert LogEntry.objects.filter(object_id=str(second.pk), user=manager).count() == 1


@pytest.mark.django_db
def test_a_manager_promotes_a_rejected_version_with_one_click(django_capture_on_commit_callbacks):
    manager = make_manager()
    first = _train(django_capture_on_commit_callbacks)
    degraded = _train(django_capture_on_commit_callbacks, examples=shuffled_seed())
    triage_local.predict(TEXT)

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(_csrf_client(manager), reverse("admin:tickets_triagemodel_promote", args=[degraded.pk]))

    assert response.status_code == 302
    assert _status(first, degraded) == [(2, "active", True), (1, "retired", False)]
    assert TriageModel.objects.get(pk=degraded.pk).reason == f"Promoted by {manager} (was rejected)."
    assert triage_local.predict(TEXT).model_version == 2
    entry = LogEntry.objects.get(object_id=str(degraded.pk))
    assert (entry.user, entry.change_message) == (manager, "Promoted v2, replacing v1.")


@pytest.mark.django_db
def test_agents_may_see_the_versions_but_not_promote_or_roll_back(django_capture_on_commit_callbacks):
    agent = make_agent()
    first = _train(django_capture_on_commit_callbacks)
    second = _train(django_capture_on_commit_callbacks)
    client = _csrf_client(agent)

    page = client.get(reverse(CHANGELIST_URL))
    rollback = _post(client, reverse(ROLLBACK_URL))
    promote = _post(client, reverse("admin:tickets_triagemodel_promote", args=[first.pk]))

    assert page.status_code == 200
    assert b"data-triage-promote" not in page.content
    assert b"data-triage-rollback" not in page.content
    assert (rollback.status_code, promote.status_code) == (403, 403)
    assert _status(first, second) == [(2, "active", True), (1, "retired", False)]
    assert not LogEntry.objects.exists()


@pytest.mark.django_db
def test_the_actions_need_a_post_with_the_csrf_token(django_capture_on_commit_callbacks):
    manager = make_manager()
    first = _train(django_capture_on_commit_callbacks)
    second = _train(django_capture_on_commit_callbacks)
    client = _csrf_client(manager)

    without_token = client.post(reverse(ROLLBACK_URL))
    by_get = client.get(reverse(ROLLBACK_URL))

    assert (without_token.status_code, by_get.status_code) == (403, 405)
    assert _status(first, second) == [(2, "active", True), (1, "retired", False)]
    assert not LogEntry.objects.exists()


@pytest.mark.django_db
def test_the_console_lists_each_version_with_its_figures_and_buttons_for_managers(django_capture_on_commit_callbacks):
    manager = make_manager()
    _train(django_capture_on_commit_callbacks)
    degraded = _train(django_capture_on_commit_callbacks, examples=shuffled_seed())

    page = _csrf_client(manager).get(reverse(CHANGELIST_URL))

    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="triage-version-action"' in text
    assert "data-triage-rollback" in text
    assert text.count("data-triage-promote=") == 1  # the rejected v2; the active v1 has none
    candidate, active = degraded.evaluation["candidate"], degraded.evaluation["active"]
    assert f"category: {candidate['category']['macro_f1']:.3f} (v1: {active['category']['macro_f1']:.3f})" in text
    assert "Rejected: worse than the active version" in text


@pytest.mark.django_db
def test_nothing_to_roll_back_to_is_a_message_not_an_error(django_capture_on_commit_callbacks):
    manager = make_manager()
    only = _train(django_capture_on_commit_callbacks)

    response = _post(_csrf_client(manager), reverse(ROLLBACK_URL))

    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["No earlier version to roll back to from v1."]
    assert _status(only) == [(1, "active", True)]
    assert not LogEntry.objects.exists()


@pytest.mark.django_db
def test_another_process_switches_at_its_next_prediction_after_a_promotion(
    monkeypatch, django_capture_on_commit_callbacks
):
    """Another worker process (its own model cache) learns of the promotion from the cache's generation key,
    not from its periodic database re-check (set to an hour here)."""
    monkeypatch.setattr(triage_local, "RECHECK_SECONDS", 3600.0)
    manager = make_manager()
    first = _train(django_capture_on_commit_callbacks)
    second = _train(django_capture_on_commit_callbacks, activate=False)
    other_process = triage_local._Cache()
    assert other_process.current().version == first.version

    TriageModel.objects.filter(pk=first.pk).update(reason="touched")  # a database change alone: no reload
    assert other_process.current().version == first.version
    with django_capture_on_commit_callbacks(execute=True):
        _post(_csrf_client(manager), reverse("admin:tickets_triagemodel_promote", args=[second.pk]))

    assert other_process.current().version == second.version
