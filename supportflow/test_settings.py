"""Only what tests must change. Tests use the real PostgreSQL and Redis (see conftest.py)."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-deployment")

from supportflow.settings import *  # noqa: F403
from supportflow.settings import REDIS_URL, redis_db_url

# Fast hashing: the suite creates many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Separate Redis databases so a test run never touches a running `make run`'s queues or cache.
CELERY_BROKER_URL = CELERY_RESULT_BACKEND = redis_db_url(REDIS_URL, 10)
CACHES["default"]["LOCATION"] = redis_db_url(REDIS_URL, 11)  # noqa: F405
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] = redis_db_url(REDIS_URL, 12)  # noqa: F405

# Tests that exercise the AI pipeline switch it on; elsewhere stored messages are not enqueued.
FEATURE_AI_PIPELINE = False

# In-process test workers (solo pool, which also sends worker_process_init) would fit the guard and
# triage models in the middle of a browser test; tests that need them warm do it themselves.
WORKER_WARM_UP = False
