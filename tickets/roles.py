"""The staff roles: what the ``Agents`` and ``Managers`` groups may do in the console.

Kept as data and synced after every migrate, so a fresh database, the tests and production all get
the same groups. Agents work tickets in their queues; managers also assign to others, see every
queue and configure queues, SLAs and agents. Nobody but a superuser deletes tickets or messages:
the thread and its audit log are the record.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction

AGENTS = "Agents"
MANAGERS = "Managers"


def user_is_agent(user: AbstractBaseUser | None) -> bool:
    """Active staff in the Agents or Managers group (or a superuser): works tickets in the console."""
    return bool(
        user is not None
        and user.is_active
        and user.is_staff
        and (user.is_superuser or user.groups.filter(name__in=[AGENTS, MANAGERS]).exists())
    )


def user_is_manager(user: AbstractBaseUser | None) -> bool:
    """Superusers and active staff in the Managers group: analytics, API keys, the analytics summary."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or (user.is_staff and user.groups.filter(name=MANAGERS).exists()))
    )


AGENT_PERMISSIONS = (
    "tickets.view_customer",
    "tickets.change_customer",
    "tickets.view_department",
    "tickets.view_ticket",
    "tickets.change_ticket",
    "tickets.view_message",
    "tickets.add_message",
    "tickets.view_ticketevent",
    "tickets.view_airun",
    "tickets.view_slapolicy",
    "tickets.view_slatarget",
    "tickets.view_agentprofile",
    "tickets.view_aidraft",
    "tickets.view_escalationrule",
    "tickets.view_triagemodel",
    "knowledge.view_article",
    "knowledge.view_category",
)

MANAGER_PERMISSIONS = (
    *AGENT_PERMISSIONS,
    "tickets.assign_others_ticket",
    "tickets.view_all_departments_ticket",
    "tickets.add_department",
    "tickets.change_department",
    "tickets.add_slapolicy",
    "tickets.change_slapolicy",
    "tickets.add_slatarget",
    "tickets.change_slatarget",
    "tickets.delete_slatarget",
    "tickets.add_agentprofile",
    "tickets.change_agentprofile",
    "tickets.add_escalationrule",
    "tickets.change_escalationrule",
    "tickets.delete_escalationrule",
    "knowledge.add_article",
    "knowledge.change_article",
    "knowledge.delete_article",
    "knowledge.add_category",
    "knowledge.change_category",
    # Outbound webhooks (supportflow.admin): subscriptions and their delivery log.
    "supportflow.view_webhooksubscription",
    "supportflow.add_webhooksubscription",
    "supportflow.change_webhooksubscription",
    "supportflow.delete_webhooksubscription",
    "supportflow.view_webhookdelivery",
    "supportflow.change_webhookdelivery",
)

ROLES = {AGENTS: AGENT_PERMISSIONS, MANAGERS: MANAGER_PERMISSIONS}


def _permissions(codes: tuple[str, ...]) -> list[Permission]:
    wanted = {tuple(code.split(".", 1)) for code in codes}
    found = [
        perm
        for perm in Permission.objects.select_related("content_type").filter(
            codename__in=[codename for _, codename in wanted]
        )
        if (perm.content_type.app_label, perm.codename) in wanted
    ]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in found}
    if missing:
        raise LookupError(f"permissions not found: {sorted(missing)}")
    return found


@transaction.atomic
def roles_sync() -> None:
    """Create the groups if needed and set exactly their permissions. Idempotent.

    Permissions of every app are created first: post_migrate reaches apps one by one, and this
    runs on the tickets app's, possibly before the knowledge app's permissions exist.
    """
    from django.apps import apps
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for name, codes in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(_permissions(codes))
