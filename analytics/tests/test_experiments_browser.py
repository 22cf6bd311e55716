"""A manager compares an experiment's arms on the AI page in headless Chromium and promotes one: the
per-arm table renders, the button posts with its CSRF token, the winner becomes the active version."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tickets.ai import versions
from tickets.models import AIConfigVersion, AIExperiment, AIRun
from tickets.services import ai_versions
from tickets.tests import browser as harness
from tickets.tests.factories import make_manager, make_ticket

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "pw-for-experiments-browser"
PROMPTS = {"triage_prompt": "Triage for {site}: {departments} {canary}", "reply_prompt": "Reply {language} {canary}"}


@pytest.fixture
def running(transactional_db, django_capture_on_commit_callbacks):
    manager = make_manager(username="mira")
    manager.set_password(PASSWORD)
    manager.save()
    a = ai_versions.ai_config_version_create(user=manager, label="exp-a", **PROMPTS)
    b = ai_versions.ai_config_version_create(user=manager, label="exp-b", model_reply="model-b", **PROMPTS)
    with django_capture_on_commit_callbacks(execute=True):
        ai_versions.ai_config_version_activate(user=manager, version=a)
        experiment = ai_versions.ai_experiment_create(user=manager, name="shorter replies", version_a=a, version_b=b)
        ai_versions.ai_experiment_start(user=manager, experiment=experiment)
    # arms are chosen by a hash of the ticket id, and ids depend on what ran before: make tickets until each
    # arm has three runs, so both show an interval whatever the sequence
    per_arm = {"A": 0, "B": 0}
    i = 0
    while min(per_arm.values()) < 3:
        ticket = make_ticket()
        config = versions.config_for_ticket(ticket.pk)
        per_arm[config.arm] += 1
        AIRun.objects.create(
            key=f"reply:browser:{i}", kind="reply", provider="openai", ticket=ticket, status="succeeded",
            config_version_id=config.pk, prompt_version=config.label, cost=Decimal("0.0010") * (i + 1),
            latency_ms=400 + 10 * i,
        )  # fmt: skip
        i += 1
    experiment.runs_created = i
    return experiment


def test_a_manager_compares_the_arms_and_promotes_one(running, new_context):
    page = new_context().new_page()
    problems: list[str] = []
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    # console errors (a CSP violation, a script error); failed loads are reported by the response hook
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" and "Failed to load" not in m.text else None,
    )
    page.goto("/admin/login/?next=/analytics/ai/")
    page.locator("#id_username").fill("mira")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/analytics/ai/$"))

    section = page.locator(f'[data-experiment="{running.pk}"]')
    expect(section).to_contain_text("shorter replies")
    total = sum(int(section.locator(f'[data-arm="{arm}"][data-figure="conversations"]').inner_text()) for arm in "AB")
    assert total == running.runs_created
    expect(section.locator('[data-figure="latency"]').first).to_contain_text("(")

    section.get_by_role("button", name=re.compile(r"^Promote B")).click()
    expect(page).to_have_url(re.compile(r"/analytics/ai/$"))
    expect(page.locator(".messagelist")).to_contain_text("“exp-b” is now active")
    expect(page.locator(f'[data-experiment="{running.pk}"]')).to_contain_text("promoted exp-b")
    expect(page.locator(f'[data-experiment="{running.pk}"] button')).to_have_count(0)
    assert AIConfigVersion.objects.get(label="exp-b").status == "active"
    assert AIExperiment.objects.get(pk=running.pk).status == "ended"
    assert not problems, problems
