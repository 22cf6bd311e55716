"""API keys: created (secret shown once), checked, revoked. Only the SHA-256 of the secret is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from supportflow.models import APIKey

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
    key = APIKey.objects.select_related("user").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.hashed_secret, _digest(secret)):
        return None
    if not key.is_active or not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_EVERY:
        APIKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_revoke(*, key: APIKey) -> APIKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key
