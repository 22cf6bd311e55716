"""``user_roles_preload``: one query that leaves ``has_perm`` and the role checks answering exactly as
they would have with Django's own lookups."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tickets.roles import user_is_agent, user_is_manager, user_roles_preload
from tickets.tests.factories import DepartmentFactory, UserFactory, make_agent, make_manager

pytestmark = pytest.mark.django_db
ASKED = ("tickets.view_ticket", "tickets.view_all_departments_ticket", "tickets.assign_others_ticket", "auth.add_user")


def fresh(user):
    return get_user_model().objects.get(pk=user.pk)


def answers(user) -> tuple:
    return user_is_agent(user), user_is_manager(user), {perm: user.has_perm(perm) for perm in ASKED}


@pytest.mark.parametrize("kind", ["agent", "manager", "staff without a role", "direct permission", "inactive"])
def test_preloaded_answers_equal_djangos_own_in_one_query(kind, django_assert_num_queries):
    department = DepartmentFactory()
    if kind == "agent":
        user = make_agent(department)
    elif kind == "manager":
        user = make_manager(department)
    else:
        user = UserFactory(is_staff=True, is_active=kind != "inactive")
    if kind == "direct permission":
        user.user_permissions.add(Permission.objects.get(codename="view_all_departments_ticket"))
    expected = answers(fresh(user))
    loaded = fresh(user)
    with django_assert_num_queries(0 if kind == "inactive" else 1):
        user_roles_preload(user=loaded)
        assert answers(loaded) == expected
    assert expected[2]["tickets.view_ticket"] is (kind in ("agent", "manager"))


@pytest.mark.parametrize("kind", ["agent", "manager", "direct permission"])
def test_an_api_keys_check_loads_its_user_and_roles_in_one_query(kind, django_assert_num_queries):
    from supportflow.api.keys import api_key_check, api_key_create

    department = DepartmentFactory()
    user = make_manager(department) if kind == "manager" else make_agent(department)
    if kind == "direct permission":
        user.user_permissions.add(Permission.objects.get(codename="view_all_departments_ticket"))
    key, secret = api_key_create(name="roles", user=user, scopes=["tickets:read", "kb:read"])
    expected = answers(fresh(user))
    api_key_check(secret)  # the first check of a minute also stamps last_used_at (an UPDATE)
    with django_assert_num_queries(1):
        checked = api_key_check(secret)
        assert answers(checked.user) == expected
    assert (checked.pk, checked.user.pk, checked.scopes) == (key.pk, user.pk, ["kb:read", "tickets:read"])
    assert api_key_check(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None  # the right prefix, wrong secret
