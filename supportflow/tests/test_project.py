"""The project's own health: Django checks, migrations in sync, compose valid, settings from env."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def test_django_system_checks_pass():
    call_command("check", fail_level="WARNING")


@pytest.mark.django_db
def test_models_and_migrations_are_in_sync():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_compose_file_is_valid_against_the_compose_spec():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_vector_extension_is_installed():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None


def test_settings_refuse_to_start_without_a_secret_key(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "SF_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "supportflow.settings"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_database_uses_the_connection_pool_without_persistent_connections(settings):
    db = settings.DATABASES["default"]
    assert db["CONN_MAX_AGE"] == 0
    assert db["OPTIONS"]["pool"]["max_size"] >= 1


@pytest.mark.django_db
def test_roles_exist_with_their_permissions():
    from django.contrib.auth.models import Group

    agents = Group.objects.get(name="Agents")
    managers = Group.objects.get(name="Managers")
    agent_perms = set(agents.permissions.values_list("codename", flat=True))
    manager_perms = set(managers.permissions.values_list("codename", flat=True))
    assert {"view_ticket", "change_ticket", "add_message"} <= agent_perms
    assert "assign_others_ticket" not in agent_perms
    assert "delete_ticket" not in agent_perms | manager_perms
    assert agent_perms < manager_perms


def test_vendored_front_end_files_match_their_recorded_checksums():
    import hashlib

    vendor = ROOT / "static" / "vendor"
    recorded = {}
    for line in (vendor / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name.removeprefix("./")] = digest
    on_disk = {
        str(path.relative_to(vendor)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in vendor.rglob("*")
        if path.is_file() and path.name not in {"README", "SHA256SUMS"}
    }
    assert on_disk == recorded
