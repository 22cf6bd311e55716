"""The staff roles: what the ``Agents`` and ``Managers`` groups may do in the console.

Kept as data and synced after every migrate, so a fresh database, the tests and production all get
the same groups. Agents work tickets in their queues; managers also assign to others, see every
queue and configure queues, SLAs and agents. Nobody but a superuser deletes tickets or messages:
the thread and its audit log are the record.
"""

from __future__ import annotations

import functools

from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction

AGENTS = "Agents"
MANAGERS = "Managers"


GROUP_NAMES_ATTR = "_sf_group_names"
_GROUP_MARK = "group:"


def user_is_agent(user: AbstractBaseUser | None) -> bool:
    """Active staff in the Agents or Managers group (or a superuser): works tickets in the console."""
    return bool(
        user is not None
        and user.is_active
        and user.is_staff
        and (user.is_superuser or _in_group(user, AGENTS, MANAGERS))
    )


def user_is_manager(user: AbstractBaseUser | None) -> bool:
    """Superusers and active staff in the Managers group: analytics, API keys, the analytics summary."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or (user.is_staff and _in_group(user, MANAGERS)))
    )


def _in_group(user: AbstractBaseUser, *names: str) -> bool:
    """One query per user object for all its role checks: the group names are loaded once and kept on it
    (a request's user is loaded per request, so nothing outlives the request). A console page asks several
    (agent, then manager for the admins only managers see) and paid a query for each."""
    loaded = getattr(user, GROUP_NAMES_ATTR, None)
    if loaded is None:
        loaded = set(user.groups.values_list("name", flat=True))
        setattr(user, GROUP_NAMES_ATTR, loaded)
    return not loaded.isdisjoint(names)


def user_roles_preload(*, user: AbstractBaseUser) -> None:
    """Load the user's group names and permissions in one query, onto this user object only.

    What the role checks of one API request read (``user_is_agent``, then ``has_perm`` twice in the
    scoping) otherwise took three queries. The permissions go where Django's ``ModelBackend`` caches them
    (``_perm_cache``, as it fills it on first use), so ``has_perm`` answers exactly as it would have. Call it
    on a freshly loaded user (each API request loads its key's user): nothing is cached across requests.
    Superusers and inactive users are left alone (``has_perm`` does not ask the backend for them).
    Plain SQL, written once: the ORM spent longer composing this union than PostgreSQL took to run it."""
    from django.db import connection

    if user.is_superuser or not user.is_active:
        return
    with connection.cursor() as cursor:
        cursor.execute(roles_sql("%(user)s"), {"user": user.pk})
        user_roles_apply(user=user, codes=[code for (code,) in cursor.fetchall()])


def user_roles_apply(*, user: AbstractBaseUser, codes: list[str]) -> None:
    """What ``roles_sql`` returned for this user, put where the role checks and ``has_perm`` read it."""
    if user.is_superuser or not user.is_active:
        return
    setattr(user, GROUP_NAMES_ATTR, {code[len(_GROUP_MARK) :] for code in codes if code.startswith(_GROUP_MARK)})
    user._perm_cache = {code for code in codes if not code.startswith(_GROUP_MARK)}


@functools.cache
def roles_sql(user: str) -> str:
    """The user's permissions (``app_label.codename``) and group names (``group:Name``), for the user id
    ``user`` (a placeholder, or a column of an enclosing statement)."""
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType

    user_model = get_user_model()
    user_groups = user_model._meta.get_field("groups").remote_field.through._meta
    user_perms = user_model._meta.get_field("user_permissions").remote_field.through._meta
    group_perms = Group._meta.get_field("permissions").remote_field.through._meta
    ug_user = user_groups.get_field(user_model._meta.model_name).column
    up_user = user_perms.get_field(user_model._meta.model_name).column
    return f"""
        SELECT ct.app_label || '.' || p.codename
          FROM {Permission._meta.db_table} p JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id
         WHERE p.id IN (SELECT up.permission_id FROM {user_perms.db_table} up WHERE up.{up_user} = {user}
                        UNION
                        SELECT gp.permission_id FROM {group_perms.db_table} gp
                          JOIN {user_groups.db_table} ug ON ug.group_id = gp.group_id
                         WHERE ug.{ug_user} = {user})
        UNION ALL
        SELECT '{_GROUP_MARK}' || g.name FROM {Group._meta.db_table} g
          JOIN {user_groups.db_table} ug ON ug.group_id = g.id WHERE ug.{ug_user} = {user}
    """  # noqa: S608 — table and column names from the models' own metadata; the user id a parameter or a column


AGENT_PERMISSIONS = (
    "tickets.view_customer",
    "tickets.change_customer",
    "tickets.view_department",
    "tickets.view_ticket",
    "tickets.add_ticket",  # open a ticket for a customer from the console (a call, a visit), in their queues
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
    # Macros: their own personal ones (the console checks ownership); shared ones are read-only to agents.
    "tickets.view_macro",
    "tickets.add_macro",
    "tickets.change_macro",
    "tickets.delete_macro",
    "tickets.view_tag",
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
    "tickets.manage_shared_macro",
    "tickets.add_tag",
    "tickets.change_tag",
    "tickets.delete_tag",
    # The website widget's sites (tickets.admin.widget): which origins may embed the chat.
    "tickets.view_widgetsite",
    "tickets.add_widgetsite",
    "tickets.change_widgetsite",
    "tickets.delete_widgetsite",
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
