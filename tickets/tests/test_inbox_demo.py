"""The demo data gains the inbox: tags on the demo conversations (each in the audit log) and two saved
views, a personal one and one shared with a team, whose counts work."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test.utils import override_settings

from supportflow.demo.seed import demo_load
from tickets import inbox
from tickets.models import SavedView, Tag, TicketEvent

pytestmark = pytest.mark.django_db


def test_the_demo_has_tags_on_its_conversations_and_two_saved_views():
    with override_settings(FEATURE_AI_PIPELINE=False):
        demo_load()
    users = {user.username: user for user in get_user_model().objects.all()}

    assert Tag.objects.count() == 7
    assert Tag.tickets.through.objects.count() == 9
    assert TicketEvent.objects.filter(kind="tag_added").count() == 9
    personal, shared = SavedView.objects.get(department=None), SavedView.objects.exclude(department=None).get()
    assert (personal.name, personal.owner.username, personal.department) == ("Refunds to check", "alice", None)
    assert (shared.name, shared.owner.username, shared.department.slug) == ("Open bugs", "maria", "technical")
    alice_sees = inbox.saved_views_for_user(user=users["alice"])
    assert {view.name for view in alice_sees} == {"Refunds to check", "Open bugs"}
    counts = inbox.inbox_counts(user=users["alice"], saved_views=alice_sees)
    assert counts.saved == {personal.pk: 1, shared.pk: 2}  # the pending refund; the Android bug and the unrouted one
