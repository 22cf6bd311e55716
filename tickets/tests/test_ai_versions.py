"""Configuration versions and A/B experiments, end to end: two versions with different prompts, models
and thresholds; conversations split by the stable hash; every AIRun records its version; the fake
OpenAI-compatible server sees each arm's prompt and model; the AI page shows per-arm figures; only a
manager promotes (POST with CSRF), which activates the winner and ends the experiment, audited."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from analytics.experiments import mean_interval, shown, wilson
from tickets import ai_config, services
from tickets.ai import pipeline, versions
from tickets.models import AIConfigVersion, AIExperiment, AIRun, Ticket
from tickets.services import TicketRuleError, ai_versions
from tickets.tests.factories import make_agent, make_manager
from tickets.tests.test_pipeline import _triage_json, customer_writes, world  # noqa: F401 (the fixture)

MARKERS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliett",
    "kilo",
    "lima",
    "mike",
    "november",
]
B_TRIAGE = "ARM-B TRIAGE for {site}. Departments:\n{departments}\nMarker (never output it): {canary}"
B_REPLY = "ARM-B REPLY for {site} in {language}: cite passages as [n]. Marker (never output it): {canary}"


# --- the pieces ----------------------------------------------------------------------------------------


def test_the_arm_is_a_stable_hash_of_the_experiment_and_the_ticket():
    # pinned: a change of the hash would move running conversations to the other arm
    assert [versions.bucket(1, t) for t in range(1, 6)] == [12, 64, 15, 78, 13]
    assert [versions.arm_for(experiment_id=1, share_b=15, ticket_id=t) for t in range(1, 6)] == list("BAAAB")
    arms = [versions.arm_for(experiment_id=3, share_b=30, ticket_id=t) for t in range(1, 1001)]
    assert 200 < arms.count("B") < 400  # about 30 % of 1000 tickets: the hash spreads them


@pytest.mark.parametrize(
    ("field", "text", "problem"),
    [
        ("triage_prompt", "Triage for {site}: {departments}", "missing placeholder {canary}"),
        ("reply_prompt", "Reply in {language} {canary} {departments}", "unknown placeholder {departments}"),
        ("reply_prompt", "Reply {canary} {0}", "unknown placeholder {0}"),
        ("reply_prompt", "Reply {canary} {site", "expected '}' before end of string"),
    ],
)
def test_a_prompt_the_pipeline_cannot_fill_is_refused(field, text, problem):
    assert problem in ai_config.prompt_problems(field, text)


def test_the_builtin_prompts_are_valid_versions():
    builtin = versions.builtin()
    assert ai_config.prompt_problems("triage_prompt", builtin.triage_prompt) == []
    assert ai_config.prompt_problems("reply_prompt", builtin.reply_prompt) == []


def test_wilson_and_normal_intervals():
    figure = wilson(8, 10)
    assert (round(figure.low, 3), round(figure.high, 3)) == (0.49, 0.943)
    assert wilson(0, 0).value is None
    assert (round(wilson(0, 20).low, 3), round(wilson(0, 20).high, 3)) == (0.0, 0.161)
    m = mean_interval(10.0, 2.0, 16)
    assert (round(m.low, 2), round(m.high, 2)) == (9.02, 10.98)
    assert mean_interval(5.0, None, 1).low is None
    assert shown(figure, "share") == "80.0 % (49.0–94.3)"
    assert shown(wilson(0, 0), "share") == "—"


# --- services ------------------------------------------------------------------------------------------


def _version_1(manager) -> AIConfigVersion:
    """The migration's v1 (a transactional test elsewhere may have flushed it: then made again)."""
    v1 = AIConfigVersion.objects.filter(label="v1").first()
    if v1 is None:
        builtin = versions.builtin()
        v1 = ai_versions.ai_config_version_create(
            user=manager, label="v1", triage_prompt=builtin.triage_prompt, reply_prompt=builtin.reply_prompt
        )
        ai_versions.ai_config_version_activate(user=manager, version=v1)
    return v1


def test_the_migration_made_todays_behaviour_version_1(db):
    v1 = AIConfigVersion.objects.get(label="v1")
    builtin = versions.builtin()
    assert (v1.status, v1.triage_prompt, v1.reply_prompt) == ("active", builtin.triage_prompt, builtin.reply_prompt)
    assert (v1.model_triage, v1.model_reply, v1.confidence_threshold) == ("", "", None)


def test_only_managers_change_versions_and_bad_prompts_are_refused(db, django_capture_on_commit_callbacks):
    manager, agent = make_manager(), make_agent()
    with pytest.raises(PermissionError):
        ai_versions.ai_config_version_create(user=agent, label="x", triage_prompt=B_TRIAGE, reply_prompt=B_REPLY)
    with pytest.raises(TicketRuleError, match="canary"):
        ai_versions.ai_config_version_create(user=manager, label="x", triage_prompt="{site}", reply_prompt=B_REPLY)
    assert not AIConfigVersion.objects.filter(label="x").exists()


def test_versions_are_cached_per_process_until_a_service_changes_one(db, django_capture_on_commit_callbacks):
    manager = make_manager()
    v1 = _version_1(manager)
    assert versions.config_for_ticket(1).pk == v1.pk
    AIConfigVersion.objects.filter(pk=v1.pk).update(reply_prompt="changed behind the services' back {canary}")
    assert versions.config_for_ticket(1).reply_prompt == v1.reply_prompt  # served from the process's copy
    v2 = ai_versions.ai_config_version_create(user=manager, label="v2", triage_prompt=B_TRIAGE, reply_prompt=B_REPLY)
    with django_capture_on_commit_callbacks(execute=True):
        ai_versions.ai_config_version_activate(user=manager, version=v2)
    assert versions.config_for_ticket(1).label == "v2"
    assert AIConfigVersion.objects.get(pk=v1.pk).status == "retired"


def test_one_experiment_runs_at_a_time(db, django_capture_on_commit_callbacks):
    manager = make_manager()
    v1 = _version_1(manager)
    v2 = ai_versions.ai_config_version_create(user=manager, label="v2", triage_prompt=B_TRIAGE, reply_prompt=B_REPLY)
    first = ai_versions.ai_experiment_create(user=manager, name="one", version_a=v1, version_b=v2)
    second = ai_versions.ai_experiment_create(user=manager, name="two", version_a=v2, version_b=v1)
    ai_versions.ai_experiment_start(user=manager, experiment=first)
    with pytest.raises(TicketRuleError, match="Another experiment is running"):
        ai_versions.ai_experiment_start(user=manager, experiment=second)
    assert AIExperiment.objects.get(pk=second.pk).status == "draft"
    with pytest.raises(TicketRuleError, match="two different versions"):
        ai_versions.ai_experiment_create(user=manager, name="same", version_a=v1, version_b=v1)


# --- end to end ----------------------------------------------------------------------------------------


def _responder(request: dict):
    schema = (request.get("response_format") or {}).get("json_schema", {}).get("name", "")
    if "riage" in schema:
        return _triage_json()
    return {
        "answerable": True,
        "answer": "Open Settings → Sync → Reset local cache; your notes download again within a few minutes [1].",
        "citations": [1],
    }


def _marker_of(request: dict) -> str:
    text = json.dumps([m["content"] for m in request["messages"] if m["role"] == "user"])
    [marker] = [m for m in MARKERS if re.search(rf"\b{m}\b", text)]
    return marker


def _cell(html: str, experiment_id: int, arm: str, figure: str) -> str:
    section = html.split(f'data-experiment="{experiment_id}"', 1)[1].split("</section>", 1)[0]
    match = re.search(rf'data-arm="{arm}" data-figure="{figure}">([^<]*)<', section)
    return match.group(1)


def test_an_experiment_splits_conversations_records_versions_and_is_promoted(
    world,  # noqa: F811
    fake_openai,
    settings,
    django_capture_on_commit_callbacks,
):
    # given two versions: B has its own prompts, models and a threshold no answer reaches
    manager, agent = make_manager(username="meg"), make_agent(world["departments"]["technical"], username="al")
    v1 = _version_1(manager)
    v2 = ai_versions.ai_config_version_create(
        user=manager,
        label="v2-terse",
        triage_prompt=B_TRIAGE,
        reply_prompt=B_REPLY,
        model_triage="model-b-triage",
        model_reply="model-b-reply",
        confidence_threshold=1.01,
    )
    experiment = ai_versions.ai_experiment_create(
        user=manager, name="terse prompts", version_a=v1, version_b=v2, share_b=50
    )
    with django_capture_on_commit_callbacks(execute=True):
        ai_versions.ai_experiment_start(user=manager, experiment=experiment)
    fake_openai.responder = _responder

    # when customers ask until both arms have conversations
    tickets: dict[str, Ticket] = {}
    for marker in MARKERS:
        message = customer_writes(f"Sync is stuck on my Android phone, it says syncing forever ({marker})")
        tickets[marker] = message.ticket
        pipeline.process_message(message_id=message.pk)
        arms = [versions.arm_for(experiment_id=experiment.pk, share_b=50, ticket_id=t.pk) for t in tickets.values()]
        if arms.count("A") >= 2 and arms.count("B") >= 2:
            break
    arm_of = {m: versions.arm_for(experiment_id=experiment.pk, share_b=50, ticket_id=t.pk) for m, t in tickets.items()}
    assert sorted(set(arm_of.values())) == ["A", "B"]

    # then each conversation's runs record its arm's version, and the LLM saw that arm's prompt and model
    for marker, ticket in tickets.items():
        version = v2 if arm_of[marker] == "B" else v1
        runs = AIRun.objects.filter(ticket=ticket)
        assert runs.count() >= 3  # local triage, LLM triage, LLM reply
        assert set(runs.values_list("config_version_id", "prompt_version")) == {(version.pk, version.label)}
        assert Ticket.objects.get(pk=ticket.pk).ai_drafts.get().gate["experiment"] == {
            "id": experiment.pk,
            "arm": arm_of[marker],
        }
    assert len(fake_openai.requests) == 2 * len(tickets)
    for request in fake_openai.requests:
        system = request["messages"][0]["content"]
        if arm_of[_marker_of(request)] == "B":
            assert request["model"] in {"model-b-triage", "model-b-reply"}
            assert system.startswith("ARM-B ")
        else:
            assert request["model"] == settings.LLM_MODEL_TRIAGE == settings.LLM_MODEL_REPLY
            assert system.startswith(("You triage customer support messages", "You are the customer support"))

    # and B's threshold kept its answers as drafts while A sent them; A's customers then react
    a_tickets = [Ticket.objects.get(pk=t.pk) for m, t in tickets.items() if arm_of[m] == "A"]
    b_tickets = [Ticket.objects.get(pk=t.pk) for m, t in tickets.items() if arm_of[m] == "B"]
    assert all(t.messages.filter(author_kind="ai").exists() for t in a_tickets)
    assert not any(t.messages.filter(author_kind="ai", ai_confidence__isnull=False).exists() for t in b_tickets)
    services.message_record_feedback(message=a_tickets[0].messages.get(author_kind="ai"), helpful=False)
    for t in a_tickets:
        services.ticket_resolve_by_customer(ticket=t)
    services.ticket_record_csat(ticket=Ticket.objects.get(pk=a_tickets[0].pk), score=1)

    # the AI page shows per-arm figures with intervals
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    html = client.get("/analytics/ai/").content.decode()
    assert _cell(html, experiment.pk, "A", "conversations") == str(len(a_tickets))
    assert _cell(html, experiment.pk, "B", "conversations") == str(len(b_tickets))
    expected_a = shown(wilson(len(a_tickets), len(a_tickets)), "share")
    assert _cell(html, experiment.pk, "A", "automation") == expected_a
    assert _cell(html, experiment.pk, "B", "automation") == shown(wilson(0, len(b_tickets)), "share")
    assert _cell(html, experiment.pk, "A", "no_votes") == shown(wilson(1, 1), "share")
    assert _cell(html, experiment.pk, "A", "low_csat") == shown(wilson(1, 1), "share")
    assert _cell(html, experiment.pk, "B", "low_csat") == "—"
    assert "(" in _cell(html, experiment.pk, "A", "cost")  # a mean with its interval
    assert _cell(html, experiment.pk, "B", "latency") != "—"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    promote = f"/analytics/ai/experiments/{experiment.pk}/promote/"

    # an agent cannot promote; nor can a manager without the CSRF token; a bad arm is a 400
    agent_client = Client()
    agent_client.force_login(agent)
    assert agent_client.post(promote, {"arm": "B"}).status_code == 403
    assert client.post(promote, {"arm": "B"}).status_code == 403
    assert client.post(promote, {"arm": "C", "csrfmiddlewaretoken": token}).status_code == 400
    assert AIExperiment.objects.get(pk=experiment.pk).status == "running"
    assert AIConfigVersion.objects.get(pk=v1.pk).status == "active"

    # a manager promotes B: it serves everyone, the experiment ended, the history says who did it
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(promote, {"arm": "B", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.status, experiment.winner_id, experiment.ended_by_id) == ("ended", v2.pk, manager.pk)
    assert dict(AIConfigVersion.objects.filter(pk__in=[v1.pk, v2.pk]).values_list("label", "status")) == {
        v1.label: "retired",
        v2.label: "active",
    }
    config = versions.config_for_ticket(a_tickets[0].pk)
    assert (config.pk, config.experiment_id, config.model_reply) == (v2.pk, None, "model-b-reply")
    assert LogEntry.objects.filter(user=manager, object_id=str(experiment.pk), change_message="Promoted v2-terse.")
    assert client.post(promote, {"arm": "A", "csrfmiddlewaretoken": token}).status_code == 400  # once only
    assert AIConfigVersion.objects.get(pk=v2.pk).status == "active"


# --- the console ---------------------------------------------------------------------------------------


def test_managers_create_versions_and_experiments_in_the_console(db, django_capture_on_commit_callbacks):
    manager, agent = make_manager(), make_agent()
    v1 = _version_1(manager)
    client = Client()
    client.force_login(manager)
    page = client.get("/admin/tickets/aiconfigversion/add/")
    assert page.status_code == 200
    assert "You triage customer support messages" in page.content.decode()  # a copy of the active one

    refused = client.post(
        "/admin/tickets/aiconfigversion/add/",
        {"label": "bad", "triage_prompt": "no marker {site}", "reply_prompt": B_REPLY, "notes": ""},
    )
    assert refused.status_code == 200
    assert "missing placeholder {canary}" in refused.content.decode()
    assert not AIConfigVersion.objects.filter(label="bad").exists()

    created = client.post(
        "/admin/tickets/aiconfigversion/add/",
        {"label": "v2", "triage_prompt": B_TRIAGE, "reply_prompt": B_REPLY, "model_reply": "m2", "notes": "terse"},
    )
    assert created.status_code == 302
    v2 = AIConfigVersion.objects.get(label="v2")
    assert (v2.status, v2.created_by, v2.model_reply) == ("draft", manager, "m2")

    assert (
        client.post(
            "/admin/tickets/aiexperiment/add/",
            {"name": "t", "version_a": v1.pk, "version_b": v2.pk, "share_b": 20},
        ).status_code
        == 302
    )
    experiment = AIExperiment.objects.get(name="t")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/tickets/aiexperiment/",
            {"action": "start", "_selected_action": [experiment.pk], "index": 0},
        )
    experiment.refresh_from_db()
    assert (experiment.status, experiment.share_b) == ("running", 20)
    assert versions.config_for_ticket(1).experiment_id == experiment.pk

    # agents do not see or change any of it
    client.force_login(agent)
    assert client.get("/admin/tickets/aiconfigversion/").status_code == 403
    assert (
        client.post("/admin/tickets/aiexperiment/", {"action": "stop", "_selected_action": [experiment.pk]}).status_code
        == 403
    )
    assert AIExperiment.objects.get(pk=experiment.pk).status == "running"
