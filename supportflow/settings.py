"""SupportFlow settings: one module, every deployment difference comes from the environment.

Defaults point at the embedded services `make run` starts (PostgreSQL on 127.0.0.1:54329, Redis on
127.0.0.1:63799), so ``manage.py`` commands work beside a running ``make run`` with no setup.
Secrets come from the environment or from ``<NAME>_FILE`` (Docker/Kubernetes secrets), never from code.
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from supportflow import redis_roles

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SF_DATA_DIR", BASE_DIR / ".data"))
# The evaluation datasets live beside the project and are read from there, never copied in.
DATASETS_DIR = BASE_DIR.parent / "shared" / "datasets"

env = environ.Env()


def env_secret(name: str, default: str | None = None) -> str | None:
    """``NAME`` from the environment, else the contents of the file named by ``NAME_FILE``."""
    if os.environ.get(name):
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return default


DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY and (DATA_DIR / "secret_key").exists():
    # Written once by `make run` for the embedded local setup.
    SECRET_KEY = (DATA_DIR / "secret_key").read_text().strip()
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY (or SECRET_KEY_FILE) in the environment, "
        "or start the app with `make run`, which creates a local one."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_prometheus",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "template_partials",
    "supportflow",
    "tickets",
    "knowledge",
    "analytics",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "supportflow.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page language: the language cookie (the switcher), else Accept-Language; a customer's conversation
    # pages then follow the conversation (tickets.languages), the console keeps to CONSOLE_LANGUAGES.
    "django.middleware.locale.LocaleMiddleware",
    "supportflow.i18n.ConsoleLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "supportflow.middleware.ContentSecurityPolicyMiddleware",
    "supportflow.middleware.RejectNulMiddleware",
    "supportflow.resilience.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "supportflow.urls"
WSGI_APPLICATION = "supportflow.wsgi.application"
ASGI_APPLICATION = "supportflow.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "supportflow.context_processors.site",
            ],
        },
    },
]

# --- Database: psycopg 3 with Django's connection pool. CONN_MAX_AGE must stay 0 with the pool;
# persistent connections leak under ASGI (every request runs in a different thread).
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:54329/supportflow"),
}
DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = 0
# The pool checks a connection before handing it out, so one left over from before a database restart is
# replaced instead of failing a request (supportflow/resilience.py: what requests get during the outage).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
    "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
    "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
}
# The chat's hot path awaits its one statement on the event loop (supportflow/aio.py), on its own small pool.
DB_ASYNC_POOL_MAX_SIZE = env.int("DB_ASYNC_POOL_MAX_SIZE", default=4)
# ... and prepares it once per connection (off behind a transaction-mode pooler such as PgBouncer < 1.21)
DB_ASYNC_PREPARE = env.bool("DB_ASYNC_PREPARE", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis by role (supportflow/redis_roles.py, docs/deploy.md): broker, cache, channel layer and locks
# each take their own URL, redis:// or redis+sentinel://; unset, they share REDIS_URL's server, apart by db.
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:63799/0")


def redis_db_url(url: str, db: int) -> str:
    """The same Redis server with another logical database (cache and channel layer apart from Celery)."""
    return redis_roles.with_db(url, db)


REDIS_CACHE_DB = env.int("REDIS_CACHE_DB", default=1)
REDIS_CHANNELS_DB = env.int("REDIS_CHANNELS_DB", default=2)
REDIS_BROKER_URL = env("REDIS_BROKER_URL", default="") or REDIS_URL
REDIS_CACHE_URL = env("REDIS_CACHE_URL", default="") or redis_db_url(REDIS_URL, REDIS_CACHE_DB)
REDIS_CHANNELS_URL = env("REDIS_CHANNELS_URL", default="") or redis_db_url(REDIS_URL, REDIS_CHANNELS_DB)
REDIS_LOCKS_URL = env("REDIS_LOCKS_URL", default="") or REDIS_URL
for _url in (REDIS_BROKER_URL, REDIS_CACHE_URL, REDIS_CHANNELS_URL, REDIS_LOCKS_URL):
    redis_roles.sentinel_target(_url)  # a malformed Sentinel URL stops the start, with the form to use

CACHES = {
    "default": {
        # Django's Redis cache, counting gets, hits and misses for /metrics (django-prometheus's own
        # Redis backend needs django-redis); it also takes redis+sentinel:// URLs.
        "BACKEND": "supportflow.cache.RedisCache",
        "LOCATION": REDIS_CACHE_URL,
        "KEY_PREFIX": "sf",
        "TIMEOUT": 300,
    }
}

CHANNEL_LAYERS = {
    "default": {
        # Pub/sub: one PUBLISH per group send, pushed to subscribers; no per-process inbox capacity
        # that silently drops under load and no TTL'd group sets to go stale. Delivery is at most
        # once either way, which the design already assumes: messages are stored first and every
        # client resyncs from its last sequence number on (re)connect.
        # supportflow.layers: channels_redis' pub/sub layer that also makes sockets resync after Redis restarts.
        "BACKEND": "supportflow.layers.ResyncingPubSubChannelLayer",
        "CONFIG": {
            "hosts": [
                redis_roles.channels_host(
                    REDIS_CHANNELS_URL,
                    # redis-py 8 defaults to a 5 s socket timeout and a pool of 100 that fails
                    # instead of waiting; both are set explicitly.
                    socket_timeout=30,
                    socket_connect_timeout=5,
                    health_check_interval=15,
                    max_connections=1000,
                )
            ],
        },
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Celery (see supportflow/celery.py). Tasks are idempotent, so late acks are safe.
# Celery reads Sentinel as kombu's own "sentinel://h1/db;sentinel://h2/db" plus master_name (redis_roles.celery_url).
CELERY_BROKER_URL, _broker_sentinel = redis_roles.celery_url(REDIS_BROKER_URL)
CELERY_RESULT_BACKEND, CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = redis_roles.celery_url(REDIS_BROKER_URL)
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A new pool process loads the models before it reports up (celery.py ``_warm_up``). On a busy host that takes
# far longer than Celery's default 4 s, and the pool would kill and re-fork it forever (seen after a Redis restart).
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", default=300.0)
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 150
# A task whose worker died is redelivered after this long (seconds); ETAs must stay below it.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    **_broker_sentinel,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = "UTC"
# django-celery-beat's DatabaseScheduler behind a Redis lease: a second beat started by mistake sends nothing.
CELERY_BEAT_SCHEDULER = "supportflow.beat:SingleBeatScheduler"
# A customer waits on ``ai`` tasks; beat work goes to ``housekeeping``. A worker consumes every queue
# below unless started with ``-Q``; give ``ai`` its own workers to keep answers fast under load.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("ai"), Queue("housekeeping"), Queue("celery"))
CELERY_TASK_ROUTES = {
    "tickets.ai.tasks.process_message": {"queue": "ai"},
    "knowledge.tasks.*": {"queue": "ai"},
    "tickets.ai.tasks.*": {"queue": "housekeeping"},  # the AI's beat work: stalled sweep, scans, retrain
    "tickets.tasks.*": {"queue": "housekeeping"},
    "tickets.email.tasks.*": {"queue": "housekeeping"},
    "analytics.tasks.*": {"queue": "housekeeping"},
    "supportflow.integrations.tasks.*": {"queue": "housekeeping"},  # webhooks, Slack, Discord
}

# Outgoing mail (escalation notices): EMAIL_URL like smtp+tls://user:pass@host:587; default prints to the log.
globals().update({k: v for k, v in env.email_url("EMAIL_URL", default="consolemail://").items() if v is not None})
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="SupportFlow <support@localhost>")
# Email channel (tickets.email, docs/email.md). Replies go out through EMAIL_URL from SUPPORT_EMAIL_ADDRESS.
SUPPORT_EMAIL_ADDRESS = env("SUPPORT_EMAIL_ADDRESS", default="") or DEFAULT_FROM_EMAIL
INBOUND_EMAIL_TOKEN = env_secret("INBOUND_EMAIL_TOKEN", default="") or ""  # unset: /inbound/email/ is 404
IMAP_URL = env_secret("IMAP_URL", default="") or ""  # imaps://user:pass@host:993/INBOX; unset: no polling
IMAP_POLL_BATCH = env.int("IMAP_POLL_BATCH", default=50)
IMAP_TIMEOUT_S = env.float("IMAP_TIMEOUT_S", default=30.0)
EMAIL_MAX_MESSAGE_BYTES = env.int("EMAIL_MAX_MESSAGE_BYTES", default=25 * 1024 * 1024)
EMAIL_MAX_ATTACHMENT_BYTES = env.int("EMAIL_MAX_ATTACHMENT_BYTES", default=10 * 1024 * 1024)
EMAIL_MAX_ATTACHMENTS = env.int("EMAIL_MAX_ATTACHMENTS", default=10)
EMAIL_MAX_ATTACHMENTS_TOTAL_BYTES = env.int("EMAIL_MAX_ATTACHMENTS_TOTAL_BYTES", default=20 * 1024 * 1024)
EMAIL_PRIVATE_ROOT = Path(env("EMAIL_PRIVATE_ROOT", default=str(DATA_DIR / "email")))  # raw mail + attachments
# The public address of this install, for links in notices (e.g. https://support.example.com).
SITE_URL = env("SITE_URL", default="")
# The pages our emails link to (rating, unsubscribe): requests per IP per window (count/seconds).
EMAIL_LINK_RATE_PER_IP = env("EMAIL_LINK_RATE_PER_IP", default="60/60")
# The CSAT survey of a resolved email/API ticket goes out this long after (a quick reopen cancels it; at most 45 min).
CSAT_SURVEY_DELAY_SECONDS = env.int("CSAT_SURVEY_DELAY_SECONDS", default=300)
# At a handover the customer is told when a person will reply: the SLA bound, or sooner from the median of the
# queue's recent first human replies (this many days back, at least this many of them); tickets.reply_estimates.
REPLY_ESTIMATE_WINDOW_DAYS = env.int("REPLY_ESTIMATE_WINDOW_DAYS", default=28)
REPLY_ESTIMATE_MIN_SAMPLES = env.int("REPLY_ESTIMATE_MIN_SAMPLES", default=5)

# AI pipeline housekeeping and retention (days; 0 = never).
AUTO_CLOSE_RESOLVED_DAYS = env.int("AUTO_CLOSE_RESOLVED_DAYS", default=7)
# Sort memory for the analytics pages' queries only (SET LOCAL): exact medians over a year of tickets.
ANALYTICS_WORK_MEM = env("ANALYTICS_WORK_MEM", default="64MB")
# The savings page (docs/metrics.md, Savings): what one human-handled ticket costs (USD, as AIRun.cost) and
# takes (minutes of an agent's time), and how many recent days the monthly AI spend is projected from.
try:
    HUMAN_COST_PER_TICKET = Decimal(env("HUMAN_COST_PER_TICKET", default="6.00"))
except InvalidOperation:
    HUMAN_COST_PER_TICKET = Decimal("NaN")
if not HUMAN_COST_PER_TICKET.is_finite() or HUMAN_COST_PER_TICKET < 0:
    raise ImproperlyConfigured("HUMAN_COST_PER_TICKET must be an amount in USD such as 6.00.")
MINUTES_PER_HUMAN_TICKET = env.float("MINUTES_PER_HUMAN_TICKET", default=10.0)
SAVINGS_PROJECTION_DAYS = env.int("SAVINGS_PROJECTION_DAYS", default=7)
if MINUTES_PER_HUMAN_TICKET < 0 or not 1 <= SAVINGS_PROJECTION_DAYS <= 365:
    raise ImproperlyConfigured("MINUTES_PER_HUMAN_TICKET must be ≥ 0 and SAVINGS_PROJECTION_DAYS 1–365.")
RETENTION_AI_DETAILS_DAYS = env.int("RETENTION_AI_DETAILS_DAYS", default=90)
RETENTION_CLOSED_TICKETS_DAYS = env.int("RETENTION_CLOSED_TICKETS_DAYS", default=0)
# Hosts (besides ALLOWED_HOSTS) that AI replies may link to, e.g. a public docs site.
AI_ALLOWED_LINK_HOSTS = env.list("AI_ALLOWED_LINK_HOSTS", default=[])
# How long one worker holds a customer message (above the task's hard time limit, 140 s).
AI_MESSAGE_LOCK_SECONDS = env.int("AI_MESSAGE_LOCK_SECONDS", default=150)
# The triage model registry (docs/ai-pipeline.md): a retrain goes live only if no head's held-out macro-F1
# is below the active model's by more than the margin; the share of agents' corrected tickets held out of
# training (by a hash of the ticket id), once there are at least the minimum number of them.
TRIAGE_PROMOTION_MARGIN = env.float("TRIAGE_PROMOTION_MARGIN", default=0.01)
TRIAGE_HOLDOUT_PERCENT = env.int("TRIAGE_HOLDOUT_PERCENT", default=20)
TRIAGE_HOLDOUT_MIN_CORRECTIONS = env.int("TRIAGE_HOLDOUT_MIN_CORRECTIONS", default=50)

# --- AI providers (see supportflow/llm). `openai` is any OpenAI-compatible endpoint (OpenAI, Groq,
# vLLM, Ollama: a base URL alone is enough for keyless local servers); `local` needs no network and
# is also the fallback whenever the endpoint fails or its circuit breaker is open.
OPENAI_API_KEY = env_secret("OPENAI_API_KEY", default="") or ""
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="") or None
LLM_PROVIDER = env("LLM_PROVIDER", default="openai" if OPENAI_API_KEY or OPENAI_BASE_URL else "local")
if LLM_PROVIDER not in ("openai", "local"):
    raise ImproperlyConfigured(f"LLM_PROVIDER must be 'openai' or 'local', not {LLM_PROVIDER!r}.")
LLM_MODEL_TRIAGE = env("LLM_MODEL_TRIAGE", default="gpt-4o-mini")
LLM_MODEL_REPLY = env("LLM_MODEL_REPLY", default="gpt-4o-mini")
# The SDK's own default is 600 s and 2 retries; ours is one short timeout and one retry layer.
LLM_TIMEOUT_S = env.float("LLM_TIMEOUT_S", default=10.0)
LLM_MAX_ATTEMPTS = env.int("LLM_MAX_ATTEMPTS", default=3)
LLM_RETRY_BASE_S = env.float("LLM_RETRY_BASE_S", default=0.5)
# A server asking us to wait longer than this (Retry-After) is given up on at once.
LLM_RETRY_MAX_WAIT_S = env.float("LLM_RETRY_MAX_WAIT_S", default=20.0)
# {"model": {"input": USD per 1M tokens, "output": USD per 1M tokens}}, over the built-in table.
# How the output limit is sent: "max_tokens" (most servers), "max_completion_tokens" (OpenAI's reasoning
# models, which also need LLM_SEND_TEMPERATURE=false) or "none".
LLM_TOKEN_LIMIT_PARAM = env("LLM_TOKEN_LIMIT_PARAM", default="max_tokens")
if LLM_TOKEN_LIMIT_PARAM not in ("max_tokens", "max_completion_tokens", "none"):
    raise ImproperlyConfigured(
        f"LLM_TOKEN_LIMIT_PARAM must be max_tokens, max_completion_tokens or none, not {LLM_TOKEN_LIMIT_PARAM!r}."
    )
LLM_SEND_TEMPERATURE = env.bool("LLM_SEND_TEMPERATURE", default=True)
LLM_PRICES = env.json("LLM_PRICES", default={})
if not isinstance(LLM_PRICES, dict) or not all(
    isinstance(price, dict) and {"input", "output"} <= price.keys() for price in LLM_PRICES.values()
):
    raise ImproperlyConfigured('LLM_PRICES must look like {"model": {"input": 0.15, "output": 0.6}}.')
# Circuit breaker, shared by all processes in Redis (REDIS_CACHE_URL unless LLM_BREAKER_REDIS_URL).
LLM_BREAKER_FAILURES = env.int("LLM_BREAKER_FAILURES", default=5)
LLM_BREAKER_WINDOW_S = env.float("LLM_BREAKER_WINDOW_S", default=60.0)
LLM_BREAKER_COOLDOWN_S = env.float("LLM_BREAKER_COOLDOWN_S", default=30.0)
LLM_BREAKER_REDIS_URL = env("LLM_BREAKER_REDIS_URL", default="") or None
LLM_BREAKER_KEY_PREFIX = env("LLM_BREAKER_KEY_PREFIX", default="sf:llm:breaker:")
EMBEDDING_MODEL = env("EMBEDDING_MODEL", default="all-MiniLM-L6-v2")
# PyTorch threads per process for embeddings. 1: a web or worker process serves one short text at a
# time, and several processes share the cores (more threads then only contend). 0 = PyTorch's default.
EMBEDDING_TORCH_THREADS = env.int("EMBEDDING_TORCH_THREADS", default=1)
# Texts whose vectors a process keeps (knowledge.embeddings.embed_cached; 384 float32 each, ~6 MB at
# 4,096). The pipeline bench lowers it to hold one message's texts only (``--fresh-texts``).
EMBEDDING_CACHE_SIZE = env.int("EMBEDDING_CACHE_SIZE", default=4096)
# The AI cache (docs/ai-pipeline.md, "Caching"): retrieval results and LLM answers in the Django cache, keyed by
# the normalised question, the knowledge base's version and the prompt's; the TTL is only a backstop.
AI_CACHE_ENABLED = env.bool("AI_CACHE_ENABLED", default=True)
# Under load, a worker's model call also encodes the texts of up to this many customer messages still waiting
# in the AI queue (tickets.ai.pipeline._waiting_texts), handed to whichever process runs them: batched, a
# text costs about a third of a call of its own. 0 turns it off. Waiting = stored within the window.
AI_EMBED_AHEAD = env.int("AI_EMBED_AHEAD", default=3)
AI_EMBED_AHEAD_WINDOW_SECONDS = env.int("AI_EMBED_AHEAD_WINDOW_SECONDS", default=120)
AI_CACHE_TTL_SECONDS = env.int("AI_CACHE_TTL_SECONDS", default=24 * 3600)
AI_RETRIEVAL_CACHE_TTL_SECONDS = env.int("AI_RETRIEVAL_CACHE_TTL_SECONDS", default=3600)

# --- Feature flags (all from the environment).
FEATURE_AI_AUTO_REPLY = env.bool("FEATURE_AI_AUTO_REPLY", default=True)
# Off: customer messages are not sent to the AI pipeline at all (no triage, no drafts).
FEATURE_AI_PIPELINE = env.bool("FEATURE_AI_PIPELINE", default=True)
# When off, agents only see tickets of their own departments (plus unrouted ones and their own).
FEATURE_AGENTS_SEE_ALL_DEPARTMENTS = env.bool("FEATURE_AGENTS_SEE_ALL_DEPARTMENTS", default=False)

SITE_NAME = env("SITE_NAME", default="SupportFlow")

# --- Chat limits
MESSAGE_MAX_LENGTH = env.int("MESSAGE_MAX_LENGTH", default=10_000)
# "count/seconds": sends per conversation, sends per client address, conversations started per address.
CHAT_RATE_PER_CONVERSATION = env("CHAT_RATE_PER_CONVERSATION", default="20/60")
CHAT_RATE_PER_IP = env("CHAT_RATE_PER_IP", default="60/60")
CHAT_RATE_START_PER_IP = env("CHAT_RATE_START_PER_IP", default="10/600")
# New conversations per website-widget site, whatever the address (docs/widget.md).
WIDGET_RATE_START_PER_SITE = env("WIDGET_RATE_START_PER_SITE", default="300/600")
# X-Forwarded-For is ignored unless the app runs behind this many trusted proxies.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
CHAT_COOKIE_NAME = "sf_chat"
# Benchmark-only endpoints (a bare websocket echo); never on in production.
BENCH_ENDPOINTS = env.bool("BENCH_ENDPOINTS", default=False)

# --- Observability
METRICS_TOKEN = env_secret("METRICS_TOKEN", default="") or ""
PROMETHEUS_EXPORT_MIGRATIONS = False

# Business metrics (counters, the AI latency histogram) live in Redis, so every web and worker process
# adds to the same figures and any web process serves them; defaults to REDIS_BROKER_URL (noeviction).
METRICS_REDIS_URL = env("METRICS_REDIS_URL", default="") or None
METRICS_KEY_PREFIX = env("METRICS_KEY_PREFIX", default="sf:metrics:")

# Alerts on the AI (docs/operations.md, "Alerts"): one set of thresholds for the Prometheus rules
# (`manage.py alert_rules` writes deploy/prometheus/alerts.yml from them) and the console's banner.
ALERT_WINDOW_MINUTES = env.int("ALERT_WINDOW_MINUTES", default=60)
ALERT_MIN_SAMPLES = env.int("ALERT_MIN_SAMPLES", default=10)  # fewer answers/tickets/votes: no verdict
ALERT_CONFIDENCE_BELOW = env.float("ALERT_CONFIDENCE_BELOW", default=0.6)
ALERT_ESCALATION_RATE_ABOVE = env.float("ALERT_ESCALATION_RATE_ABOVE", default=0.2)
ALERT_NO_VOTE_SHARE_ABOVE = env.float("ALERT_NO_VOTE_SHARE_ABOVE", default=0.3)
ALERT_AI_BACKLOG_ABOVE = env.int("ALERT_AI_BACKLOG_ABOVE", default=20)
ALERT_BANNER_CACHE_S = env.int("ALERT_BANNER_CACHE_S", default=60)

# json: one JSON object per line (compose, the image); plain: readable lines (`make run`). Both carry
# request_id, ticket, task_id and task_name (see supportflow/logs.py).
LOG_FORMAT = env("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'plain', not {LOG_FORMAT!r}.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "supportflow.logs.ContextFilter"}},
    "formatters": {
        "plain": {"()": "supportflow.logs.PlainFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "supportflow.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # uvicorn's own lines (startup, access log) in the same format, instead of its separate handlers.
        "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# --- Auth, i18n, static
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en"
# Customer pages (chat, help center, rating) and emails: English, German, Spanish, French; the catalogues are in
# locale/ (`make messages`, docs/i18n.md). Names in their own language: that is how a visitor finds theirs.
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("es", "Español"), ("fr", "Français")]
# The agent console and the manager pages (/admin/, /analytics/): English and German only.
CONSOLE_LANGUAGES = ("en", "de")
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(DATA_DIR / "media")))
# Collected + hashed files in production images; served from the finders for local runs.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=False)
# Files (supportflow/storage): uploads in "default", the email channel's raw MIME and attachments in the
# private "email" storage. Local folders (MEDIA_ROOT, EMAIL_PRIVATE_ROOT) unless SF_STORAGE=s3 puts both in
# an S3-compatible bucket: AWS S3, MinIO, GCS interop (docs/deploy.md, "Object storage").
SF_STORAGE = env("SF_STORAGE", default="local")
if SF_STORAGE == "local":
    _FILE_STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "email": {"BACKEND": "supportflow.storage.filesystem.PrivateFileSystemStorage"},
    }
elif SF_STORAGE == "s3":
    if not env("AWS_STORAGE_BUCKET_NAME", default=""):
        raise ImproperlyConfigured("SF_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME.")
    # Objects are private by the bucket's own default; no ACL header unless AWS_DEFAULT_ACL asks for one
    # (buckets with ACLs disabled, the AWS default since 2023 and GCS uniform access, refuse any other).
    # Keys from the environment (or *_FILE), else boto3's own chain (instance role, IRSA, ~/.aws).
    _S3 = {
        key: value
        for key, value in {
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=""),
            "region_name": env("AWS_S3_REGION_NAME", default=""),
            "addressing_style": env("AWS_S3_ADDRESSING_STYLE", default=""),  # "path" for MinIO
            "access_key": env_secret("AWS_ACCESS_KEY_ID", default=""),
            "secret_key": env_secret("AWS_SECRET_ACCESS_KEY", default=""),
            "default_acl": env("AWS_DEFAULT_ACL", default=""),
        }.items()
        if value
    }
    _FILE_STORAGES = {
        "default": {
            "BACKEND": "supportflow.storage.s3.S3Storage",
            "OPTIONS": {
                **_S3,
                "bucket_name": env("AWS_STORAGE_BUCKET_NAME"),
                "location": env("AWS_LOCATION", default="media"),
                "file_overwrite": False,
            },
        },
        "email": {
            "BACKEND": "supportflow.storage.s3.PrivateS3Storage",
            "OPTIONS": {
                **_S3,
                "bucket_name": env("AWS_EMAIL_BUCKET_NAME", default="") or env("AWS_STORAGE_BUCKET_NAME"),
                "location": env("AWS_EMAIL_LOCATION", default="email"),
                "querystring_auth": False,
                "file_overwrite": True,  # content-addressed: same name, same bytes
            },
        },
    }
else:
    raise ImproperlyConfigured(f"SF_STORAGE must be 'local' or 's3', not {SF_STORAGE!r}.")
STORAGES = {
    **_FILE_STORAGES,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# --- Integrations: outbound webhooks, Slack, Discord (docs/integrations.md).
# Webhook URLs on private, loopback, link-local or metadata addresses are refused unless this is on
# (development and tests only).
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)
WEBHOOK_TIMEOUT_S = env.float("WEBHOOK_TIMEOUT_S", default=5.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_RETRY_BASE_S = env.float("WEBHOOK_RETRY_BASE_S", default=10.0)
WEBHOOK_RETRY_MAX_S = env.float("WEBHOOK_RETRY_MAX_S", default=900.0)  # stays below the visibility timeout
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=20)
SLACK_BOT_TOKEN = env_secret("SLACK_BOT_TOKEN", default="") or ""
SLACK_SIGNING_SECRET = env_secret("SLACK_SIGNING_SECRET", default="") or ""
SLACK_CHANNEL = env("SLACK_CHANNEL", default="")  # channel id, e.g. C0123456789
SLACK_API_BASE = env("SLACK_API_BASE", default="https://slack.com/api")
SLACK_USER_MAP = env.json("SLACK_USER_MAP", default={})  # {"U0123ABC": "alice"}: Slack user → agent username
DISCORD_WEBHOOK_URL = env_secret("DISCORD_WEBHOOK_URL", default="") or ""
DISCORD_PUBLIC_KEY = env("DISCORD_PUBLIC_KEY", default="")  # hex, from the Discord application page

# --- Security. HTTPS-only cookies and HSTS when served over TLS (behind a proxy).
SECURE_SSL = env.bool("SECURE_SSL", default=False)
SESSION_COOKIE_SECURE = SECURE_SSL
CSRF_COOKIE_SECURE = SECURE_SSL
SECURE_HSTS_SECONDS = 31536000 if SECURE_SSL else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_SSL)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SECURE_SSL)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE_SSL else None
# Behind TLS, plain-HTTP requests are redirected — except the probes and the scraper inside the network.
SECURE_SSL_REDIRECT = SECURE_SSL
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "supportflow.api.auth.APIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["supportflow.api.auth.StaffWithScope"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "supportflow.api.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["supportflow.api.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "supportflow.api.parsers.NulSafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Throttles count in the Redis cache, per API key or per signed-in user, else per client address.
    "DEFAULT_THROTTLE_CLASSES": ["supportflow.api.throttling.KeyOrUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": env("API_RATE", default="600/min")},
    # The client address is REMOTE_ADDR unless this many trusted proxies add X-Forwarded-For.
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SupportFlow API",
    "DESCRIPTION": "Tickets, messages, customers, knowledge base and analytics. Authenticate with an API key "
    "(`Authorization: Bearer sf_…`, created in the console) or the console session.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "/static/vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": "/static/vendor/swagger-ui/favicon-32x32.png",
}
