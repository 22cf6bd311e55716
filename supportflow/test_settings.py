"""Only what tests must change. Tests use the real PostgreSQL and Redis (see conftest.py)."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-deployment")

from supportflow.settings import *  # noqa: F403
from supportflow.settings import REDIS_URL, redis_db_url

# Fast hashing: the suite creates many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Separate Redis databases so a test run never touches a running `make run`'s queues or cache.
# SF_TEST_ISOLATION=<n> (1–2) gives a second concurrent run (another checkout) its own test database and
# Redis databases; CI and `make test` leave it unset.
_ISOLATION = int(os.environ.get("SF_TEST_ISOLATION", "0"))
_REDIS_BASE = (10, 3, 6)[_ISOLATION]
# Every role on the suite's one server (tests of the roles apart start servers of their own).
REDIS_BROKER_URL = REDIS_LOCKS_URL = redis_db_url(REDIS_URL, _REDIS_BASE)
REDIS_CACHE_URL = redis_db_url(REDIS_URL, _REDIS_BASE + 1)
REDIS_CHANNELS_URL = redis_db_url(REDIS_URL, _REDIS_BASE + 2)
CELERY_BROKER_URL = CELERY_RESULT_BACKEND = REDIS_BROKER_URL
CACHES["default"]["LOCATION"] = REDIS_CACHE_URL  # noqa: F405
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] = REDIS_CHANNELS_URL  # noqa: F405
if _ISOLATION:
    DATABASES["default"].setdefault("TEST", {})["NAME"] = f"test_supportflow_iso{_ISOLATION}"  # noqa: F405

# Tests that exercise the AI pipeline switch it on; elsewhere stored messages are not enqueued.
FEATURE_AI_PIPELINE = False

# The AI cache would answer a test's repeated question from an earlier step; tests of the cache switch it on.
AI_CACHE_ENABLED = False

# In-process test workers (solo pool, which also sends worker_process_init) would fit the guard and
# triage models in the middle of a browser test; tests that need them warm do it themselves.
# A worker started as a subprocess can ask for the real warm-up (and the ready announcement after it).
WORKER_WARM_UP = os.environ.get("WORKER_WARM_UP", "") == "1"
