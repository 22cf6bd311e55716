"""Where the embedded services keep their data and listen, from the ``SF_*`` environment variables, and
the helpers both servers share. Read once at import: every process of one install agrees on them."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("SF_DATA_DIR", BASE_DIR / ".data")).resolve()
PG_PORT = int(os.environ.get("SF_PG_PORT", "54329"))
REDIS_PORT = int(os.environ.get("SF_REDIS_PORT", "63799"))
DB_NAME = os.environ.get("SF_DB_NAME", "supportflow")
PG_SYSTEM_USER = "pgserver"  # Postgres refuses to run as root; pgserver's own convention.


class ServiceError(RuntimeError):
    """A service could not be started; the message says what to do about it."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(check, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise ServiceError(f"{what} did not come up within {timeout:.0f}s")
