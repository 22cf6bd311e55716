from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from analytics.models import DailyTicketStats, KnowledgeGap
from supportflow.demo.console import console_demo_tickets
from supportflow.demo.seed import DEMO_HISTORY_TICKETS
from supportflow.demo.texts import CONVERSATIONS
from tickets.models import Department, Ticket


@pytest.mark.django_db
def test_seed_demo_loads_once_and_prints_logins(settings, tmp_path, capsys):
    settings.DATA_DIR = tmp_path
    call_command("seed_demo", "--no-kb")
    first = capsys.readouterr().out
    counts = (Department.objects.count(), Ticket.objects.count(), get_user_model().objects.count())

    call_command("seed_demo", "--no-kb")
    second = capsys.readouterr().out

    # The demo conversations (3 of them in German, Spanish, French), the console's (opened by agents, merged)
    # and 90 days of simulated history.
    assert counts == (4, len(CONVERSATIONS) + console_demo_tickets() + DEMO_HISTORY_TICKETS, 4)
    assert (Department.objects.count(), Ticket.objects.count(), get_user_model().objects.count()) == counts
    passwords = json.loads((tmp_path / "demo-credentials.json").read_text())
    assert set(passwords) == {"admin", "alice", "bob", "maria"}
    for out in (first, second):
        assert all(f"{user:<6} / {pw}" in out for user, pw in passwords.items())
    assert "already loaded" in second
    for out in (first, second):  # the customer's side in German, Spanish and French
        assert re.search(r"^  de  SF-\d+ \(resolved\)  /chat/c/[^/ ]+/$", out, re.MULTILINE)
        assert re.search(r"^  es  SF-\d+ \(pending \(waiting on customer\)\)  /chat/c/", out, re.MULTILINE)
    german = Ticket.objects.get(customer__email="jana.hoffmann@example.de")
    assert (german.language, german.ui_language, german.status) == ("de", "de", "resolved")
    assert get_user_model().objects.get(username="alice").check_password(passwords["alice"])
    statuses = set(Ticket.objects.values_list("status", flat=True))
    assert statuses == {"new", "open", "pending", "resolved", "closed"}
    assert Ticket.objects.filter(escalated=True).exists()
    assert Ticket.objects.exclude(csat_score=None).exists()
    assert "History added" in first
    assert "History added" not in second
    assert DailyTicketStats.objects.filter(created__gt=0).values("day").distinct().count() >= 80
    assert KnowledgeGap.objects.filter(size__gte=3).exists()
    assert set(Ticket.objects.exclude(opened_by=None).values_list("channel", flat=True)) == {
        "phone",
        "in_person",
        "email",
    }
    [merged] = Ticket.objects.exclude(merged_into=None)
    assert merged.merged_into.messages.filter(body__startswith="I wrote in the chat yesterday").exists()
