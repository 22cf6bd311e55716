"""The embedded PostgreSQL 16 + pgvector, from the binaries the ``pgserver`` wheel ships.

We start the binaries ourselves instead of calling ``pgserver.get_server()``: that helper listens on
a unix socket and stops the server when its Python process exits, while here the web process, the
Celery worker, beat and the test runner all need one long-lived server on a known TCP port.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from supportflow.devservices.config import DATA_DIR, DB_NAME, PG_PORT, PG_SYSTEM_USER, ServiceError, port_open


@dataclass
class EmbeddedPostgres:
    data_dir: Path = field(default_factory=lambda: DATA_DIR / "pg")
    port: int = PG_PORT
    fast: bool = False  # tests: trade crash safety for speed (fsync off)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    @property
    def _bin(self) -> Path:
        with warnings.catch_warnings():  # pgserver's import warns about XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH

        return POSTGRES_BIN_PATH

    def _run_as(self) -> dict:
        return {"user": PG_SYSTEM_USER} if os.geteuid() == 0 else {}

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self._bin / "pg_ctl"), "-D", str(self.data_dir), *args],
            check=check,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **self._run_as(),
        )

    def _prepare_permissions(self) -> None:
        """As root, let the unprivileged ``pgserver`` user reach the binaries and own the data."""
        if os.geteuid() != 0:
            return
        import pwd
        import stat

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        ensure_user_exists(PG_SYSTEM_USER)
        read = stat.S_IRGRP | stat.S_IROTH
        execute = stat.S_IXGRP | stat.S_IXOTH
        ensure_prefix_permissions(self._bin)
        ensure_folder_permissions(self._bin, read | execute)
        ensure_folder_permissions(self._bin.parent / "lib", read)
        ensure_folder_permissions(self._bin.parent / "share", read)
        ensure_prefix_permissions(self.data_dir)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialised():
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    def start(self) -> bool:
        """Start the server unless it already runs; return True if this call started it."""
        if self.running():
            return False
        if port_open(self.port):
            raise ServiceError(
                f"port {self.port} is taken by another program; set SF_PG_PORT to a free port "
                "or DATABASE_URL to use an existing PostgreSQL"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._prepare_permissions()
        if not self.initialised():
            subprocess.run(
                [
                    str(self._bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "-U",
                    "postgres",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                **self._run_as(),
            )
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            "-c max_connections=200",
        ]
        if self.fast:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        result = self._pg_ctl(
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            " ".join(options),
            check=False,
        )
        if result.returncode != 0:
            log_tail = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
            raise ServiceError(f"PostgreSQL failed to start:\n{result.stdout}\n{log_tail}")
        self._ensure_database()
        return True

    def _ensure_database(self) -> None:
        import psycopg

        admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')

    def stop(self) -> None:
        if self.running():
            self._pg_ctl("stop", "-m", "fast", "-w", check=False)
