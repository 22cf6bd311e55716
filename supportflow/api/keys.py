"""API keys: created (secret shown once), checked, revoked. Only the SHA-256 of the secret is stored."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from supportflow.models import APIKey
from supportflow.rows import model_from_row, select_columns
from tickets.roles import roles_sql, user_roles_apply

TOKEN_PREFIX = "sf_"  # noqa: S105 — the public marker of our keys, not a secret
LAST_USED_EVERY = dt.timedelta(minutes=1)


class APIKeyError(ValueError):
    """The key cannot be created as asked; the message says why."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(
    *,
    name: str,
    user: AbstractBaseUser,
    scopes: list[str],
    created_by: AbstractBaseUser | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[APIKey, str]:
    """A new key and its secret (``sf_<prefix>_<random>``), which is never shown again."""
    name = " ".join((name or "").split())[:100]
    if not name:
        raise APIKeyError("Give the key a name that says what uses it.")
    unknown = sorted(set(scopes) - set(APIKey.Scope.values))
    if unknown:
        raise APIKeyError(f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(APIKey.Scope.values)}.")
    if not scopes:
        raise APIKeyError("Choose at least one scope.")
    if not (user.is_active and user.is_staff):
        raise APIKeyError("A key acts as an active staff user (an agent or a manager).")
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = APIKey.objects.create(
        name=name,
        prefix=prefix,
        hashed_secret=_digest(secret),
        user=user,
        scopes=sorted(set(scopes)),
        created_by=created_by,
        expires_at=expires_at,
    )
    return key, secret


def api_key_check(secret: str) -> APIKey | None:
    """The active key this secret belongs to, or None (malformed, unknown, revoked or expired)."""
    if not isinstance(secret, str) or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    prefix = secret[len(TOKEN_PREFIX) :].split("_", 1)[0]
    with connection.cursor() as cursor:
        cursor.execute(_check_sql(), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(APIKey._meta.concrete_fields)
    key = model_from_row(APIKey, row[:split])
    if not hmac.compare_digest(key.hashed_secret, _digest(secret)):
        return None
    key.user = model_from_row(get_user_model(), row[split:-1])
    user_roles_apply(user=key.user, codes=row[-1])
    if not key.is_active or not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_EVERY:
        APIKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


@functools.cache
def _check_sql() -> str:
    """The key of a prefix, its user and the user's roles (``tickets.roles.roles_sql``), in one statement
    written once: the ORM's join took longer to compose than to run, and the roles were a second one."""
    qn = connection.ops.quote_name
    user = get_user_model()
    return (
        f"SELECT {select_columns(APIKey, 'k')}, {select_columns(user, 'u')}, "  # noqa: S608 — names from the models
        f"ARRAY({roles_sql(f'u.{qn(user._meta.pk.column)}')}) "
        f"FROM {qn(APIKey._meta.db_table)} k JOIN {qn(user._meta.db_table)} u "
        f"ON u.{qn(user._meta.pk.column)} = k.{qn(APIKey._meta.get_field('user').column)} "
        f"WHERE k.{qn(APIKey._meta.get_field('prefix').column)} = %s"
    )


def api_key_revoke(*, key: APIKey) -> APIKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key
