# syntax=docker/dockerfile:1
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the virtualenv, from the hash lock only (app code changes don't reinstall it).
FROM ${PYTHON_IMAGE} AS builder
# requirements.lock (`make lock`) pins every package with its hashes; the script installs torch==X+cpu from
# the PyTorch CPU index (only torch sees that index), the rest from PyPI with --require-hashes, and fails
# if any nvidia-*/triton wheel came in.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY requirements.lock tools/install-locked.sh /tmp/
RUN --mount=type=cache,target=/root/.cache/pip \
    sh /tmp/install-locked.sh /tmp/requirements.lock

# --- runtime
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DJANGO_SETTINGS_MODULE=supportflow.settings \
    STATIC_MANIFEST=1 \
    SF_DATA_DIR=/data \
    MEDIA_ROOT=/data/media \
    EMAIL_PRIVATE_ROOT=/data/email \
    LOG_FORMAT=json

# /data/media and /data/email are owned by the app user so a fresh named volume mounted there inherits that owner.
RUN groupadd --gid 10001 supportflow \
 && useradd --uid 10001 --gid supportflow --create-home --shell /usr/sbin/nologin supportflow \
 && install -d -o supportflow -g supportflow /data /data/media /data/email

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/entrypoint.sh
# App code and collected static files stay root-owned: the app user can read but not change them.
COPY . .
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput

USER supportflow
EXPOSE 8000
# Liveness only; compose checks /readyz (database + Redis) for the web service.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["entrypoint.sh"]
CMD ["python", "-m", "uvicorn", "supportflow.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off"]
