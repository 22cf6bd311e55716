"""Which embedded services a process uses and which it started, so that a service already running on its
data directory (say ``make run`` in another terminal) is reused and left running: only what this
process started is stopped when it ends, and only once no other live process uses it."""

from __future__ import annotations

import os

from supportflow.devservices.config import DATA_DIR
from supportflow.devservices.postgres import EmbeddedPostgres
from supportflow.devservices.redis import EmbeddedRedis


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Users:
    """Processes using an embedded service (one file per pid), so the one that started it does not
    stop it under another: `make test` finishing must not take down the server `make run` reuses."""

    def __init__(self, name: str) -> None:
        self.folder = DATA_DIR / "users" / name

    def add(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / str(os.getpid())).touch()

    def remove(self) -> None:
        (self.folder / str(os.getpid())).unlink(missing_ok=True)

    def others(self) -> list[int]:
        if not self.folder.exists():
            return []
        alive = []
        for entry in self.folder.iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                if _pid_alive(int(entry.name)):
                    alive.append(int(entry.name))
                else:
                    entry.unlink(missing_ok=True)
        return alive


class Services:
    """The embedded services this process needs, and which of them it started."""

    def __init__(self, *, fast: bool = False) -> None:
        self.env: dict[str, str] = {}
        self._started: list[EmbeddedPostgres | EmbeddedRedis] = []
        self._using: list[tuple[EmbeddedPostgres | EmbeddedRedis, _Users]] = []
        self.postgres = None if os.environ.get("DATABASE_URL") else EmbeddedPostgres(fast=fast)
        self.redis = None if os.environ.get("REDIS_URL") else EmbeddedRedis()

    def up(self) -> dict[str, str]:
        for service, var, name in ((self.postgres, "DATABASE_URL", "postgres"), (self.redis, "REDIS_URL", "redis")):
            if service is None:
                continue
            users = _Users(name)
            users.add()
            self._using.append((service, users))
            if service.start():
                self._started.append(service)
            self.env[var] = service.url
        return {**os.environ, **self.env}

    def down(self) -> None:
        """Stop what this process started, unless another live process still uses it."""
        for service, users in reversed(self._using):
            users.remove()
            if service in self._started and not users.others():
                service.stop()
        self._using.clear()
        self._started.clear()
