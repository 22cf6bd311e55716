"""`manage.py check --deploy` is clean with production-like settings (TLS on, debug off, a real key)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings


def test_check_deploy_is_clean_with_production_like_settings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "supportflow.settings",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "DEBUG": "false",
        "SECURE_SSL": "true",
        "ALLOWED_HOSTS": "support.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://support.example.com",
    }
    env.pop("SECRET_KEY_FILE", None)
    result = subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
