"""Pieces shared by the benchmark scripts in ``bench/``: statistics, loopback-only service URLs, the
bench's own database and Redis databases, a uvicorn server as a subprocess, and rewriting one section
of ``docs/benchmarks.md``. Only what more than one script uses lives here."""

# ruff: noqa: S603 — the subprocesses are this interpreter with fixed arguments

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))  # run as a script: make `supportflow` and `tickets` importable


def log(text: str) -> None:
    """Progress goes to stderr: stdout carries the table and the final JSON line only."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- statistics -----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 2)


def median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def spread_of(values: list[float | None]) -> list[float] | None:
    present = [v for v in values if v is not None]
    return [round(min(present), 2), round(max(present), 2)] if present else None


def dist(values: list[float]) -> dict:
    """Count, p50, p95, p99 and max of ``values``, rounded to 0.1 (None where there is no data)."""
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1) if values else None,
        "p95": round(percentile(values, 95), 1) if values else None,
        "p99": round(percentile(values, 99), 1) if values else None,
        "max": round(max(values), 1) if values else None,
    }


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def require_loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit(
            f"error: {what} points at {host!r}; this benchmark drops and recreates a database and empties "
            "Redis databases, so it only runs against loopback services (use `python -m supportflow.devservices "
            "exec -- ...`)."
        )


def admin_connect(database_url: str):
    """An autocommit connection to the ``postgres`` database of the server of ``database_url``."""
    import psycopg

    return psycopg.connect(with_path(database_url, "/postgres"), autocommit=True, connect_timeout=10)


def drop_database(database_url: str, name: str) -> None:
    """Drop the database ``name`` (the bench's own only) on the server of ``database_url``, if it exists."""
    with admin_connect(database_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recreate_database(database_url: str, name: str) -> None:
    """Drop and recreate the database ``name`` on the server of ``database_url`` (the bench's own only)."""
    drop_database(database_url, name)
    with admin_connect(database_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def flush_redis_dbs(redis_url: str, dbs: tuple[int, ...]) -> None:
    import redis

    for db in dbs:
        client = redis.Redis.from_url(with_path(redis_url, f"/{db}"), socket_timeout=5, socket_connect_timeout=5)
        try:
            client.flushdb()
        finally:
            client.close()


def raise_nofile_limit() -> tuple[int, int]:
    """Soft open-files limit up to the hard one (capped): 1,000+ sockets per process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def close_django_connections() -> None:
    from django.db import connections

    for conn in connections.all():
        conn.close()
        close_pool = getattr(conn, "close_pool", None)
        if close_pool is not None:
            with contextlib.suppress(Exception):  # best effort at exit
                close_pool()


# --- the server -----------------------------------------------------------------------------------


def free_port() -> int:
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != 8000:
            return port
    raise RuntimeError("no free port found")


def _server_preexec() -> None:
    raise_nofile_limit()


class Subprocess:
    """A child process with its output in a log file: ``proc`` and ``_log_file`` are set by the
    subclass's ``start()``; ``stop()`` is SIGTERM, then SIGKILL after 15 s."""

    proc: subprocess.Popen | None
    _log_file: object

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _proc_cpu(pid: int) -> float | None:
    fields = _proc_stat(pid)
    try:
        return None if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError):
        return None


def _descendants(root: int) -> list[int]:
    """Every live process below ``root`` (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _proc_stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Server(Subprocess):
    env: dict[str, str]
    log_path: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    _log_file: object = None
    workers: int = 1  # uvicorn --workers: processes sharing the port (the kernel spreads the connections)
    app: str = "supportflow.asgi:application"  # another ASGI app from bench/ (e.g. ablation_asgi:application)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 60.0) -> None:
        self.port = free_port()
        cmd = [
            sys.executable, "-m", "uvicorn", self.app, "--app-dir", str(Path(__file__).resolve().parent),
            "--host", "127.0.0.1", "--port", str(self.port),
            "--lifespan", "off", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        self._spawn(cmd)
        self._wait_ready("/healthz", timeout=timeout, failure=f"server did not answer /healthz within {timeout:.0f}s")

    def _spawn(self, cmd: list[str]) -> None:
        self._log_file = open(self.log_path, "w")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            cwd=BASE_DIR,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_server_preexec,
            start_new_session=True,  # our Ctrl-C handling stops it, in finally
        )

    def _wait_ready(self, path: str, *, timeout: float, failure: str) -> None:
        """Until ``path`` answers 200; raises with ``failure`` and the log's tail if the server exits
        or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}{path}", timeout=2) as response:  # noqa: S310 — loopback
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{failure}:\n{self.log_tail()}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the server process (all its threads) from /proc, plus that of its
        live descendants (the worker processes of ``--workers``)."""
        if not self.alive():
            return None
        own = _proc_cpu(self.proc.pid)
        if own is None:
            return None
        return own + sum(filter(None, (_proc_cpu(pid) for pid in _descendants(self.proc.pid))))

    def rss_mb(self) -> float | None:
        if not self.alive():
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except (OSError, ValueError):
            return None
        return None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def log_findings(self) -> dict:
        """Errors in the server log, grouped by what they are (known kinds first)."""
        text = self.log_tail(chars=50_000_000)
        lines = text.splitlines()
        # Counted on the line that names the final exception (a traceback also quotes the `raise` line).
        known = {
            "redis_max_connections": re.compile(r"^redis\.exceptions\.MaxConnectionsError"),
            "redis_read_timeout": re.compile(r"^redis\.exceptions\.TimeoutError: Timeout reading"),
            "layer_over_capacity": re.compile(r"channels over capacity in group"),
            "live_delivery_failed": re.compile(r"live delivery of \S+ failed"),
            "asgi_exception": re.compile(r"Exception in ASGI application"),
        }
        counts = {name: sum(1 for line in lines if pattern.search(line)) for name, pattern in known.items()}
        # Which of our functions the ASGI exceptions went through (last app frame of each traceback).
        where = Counter()
        for block in re.split(r"\n(?=Traceback \(most recent call last\))", text):
            if not block.startswith("Traceback"):
                continue
            frames = re.findall(r'File "([^"]+)", line (\d+), in (\w+)', block)
            ours = [f for f in frames if str(BASE_DIR) in f[0] and "site-packages" not in f[0]]
            raised = [ln for ln in block.splitlines() if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b", ln)]
            last_line = raised[-1] if raised else ""
            if ours:
                path, line, func = ours[-1]
                where[f"{Path(path).relative_to(BASE_DIR)}:{line} {func} -> {last_line[:90]}"] += 1
        other = Counter()
        for line in lines:
            if re.search(r"\b(ERROR|CRITICAL|WARNING)\b", line) and not any(p.search(line) for p in known.values()):
                other[re.sub(r"\d+", "N", line.split(": ", 1)[-1])[:140]] += 1
        return {
            "lines": len(lines),
            "tracebacks": sum(1 for line in lines if line.startswith("Traceback")),
            **counts,
            "raised_in": where.most_common(8),
            "other": other.most_common(5),
        }


def run_async(coro):
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def fmt(value, digits: int = 1, *, grouped: bool = False) -> str:
    """A table cell: "–" for no value, a float to ``digits`` places; ``grouped`` puts thousands separators
    in numbers (1,234.5)."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:{',' if grouped else ''}.{digits}f}"
    return f"{value:,}" if grouped and isinstance(value, int) else str(value)


def write_docs(path: Path, heading: str, section: str) -> None:
    """Replace the ``heading`` section of ``path`` (up to the next ``## ``) with ``section``, or append it."""
    if path.exists():
        text = path.read_text()
    else:
        text = (
            "# Benchmarks\n\nEvery figure SupportFlow claims comes from a script in `bench/` (see `bench/README.md`); "
            "each section below says how to reproduce it.\n"
        )
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section.rstrip("\n") + "\n\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text)


def out_path(out: str) -> Path:
    """A ``--out`` argument: relative to the repository root unless absolute."""
    path = Path(out)
    return path if path.is_absolute() else BASE_DIR / path


def docs_update(out: str, heading: str, section: str) -> None:
    """Rewrite the ``heading`` section of the ``--out`` file (see ``write_docs``) and print which file it was."""
    path = out_path(out)
    write_docs(path, heading, section)
    print(f"wrote {path.relative_to(BASE_DIR) if path.is_relative_to(BASE_DIR) else path}")


# --- management commands and the machine ------------------------------------------------------------


def manage(env: dict[str, str], *args: str, timeout: float) -> float:
    """Run ``manage.py <args>`` as a subprocess with ``env`` (output to stderr); returns the seconds it took."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env, cwd=BASE_DIR, check=True, timeout=timeout, stdout=sys.stderr,
    )  # fmt: skip
    return time.perf_counter() - started


def machine_meta() -> dict:
    """Date, Python, cores, memory and load average: printed next to every figure."""
    import datetime as dt
    import platform

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load": [round(v, 2) for v in os.getloadavg()],
    }


def bench_services(
    base: dict[str, str], *, script: str, db_name: str, redis_db: int, cache_db: int, channels_db: int
) -> dict[str, str]:
    """The settings variables that point Django at the bench's own database and Redis databases on the
    services of ``base`` (``devservices exec`` sets them). Refuses to run without them or against a
    remote service: the bench drops databases and empties Redis databases."""
    database_url = base.get("DATABASE_URL", "")
    redis_url = base.get("REDIS_URL", "")
    if not database_url or not redis_url:
        raise SystemExit(
            "error: DATABASE_URL and REDIS_URL must be set; run through "
            f"`python -m supportflow.devservices exec -- .venv/bin/python bench/{script}`."
        )
    require_loopback(database_url, "DATABASE_URL")
    require_loopback(redis_url, "REDIS_URL")
    return {
        "DJANGO_SETTINGS_MODULE": "supportflow.settings",
        "DATABASE_URL": with_path(database_url, f"/{db_name}"),
        "REDIS_URL": with_path(redis_url, f"/{redis_db}"),
        "REDIS_CACHE_DB": str(cache_db),
        "REDIS_CHANNELS_DB": str(channels_db),
    }


def bench_env(
    base: dict[str, str],
    data_dir: Path,
    *,
    script: str,
    db_name: str,
    redis_db: int,
    cache_db: int,
    channels_db: int,
    secret_key: str,
    drop: tuple[str, ...] = (),
    **overrides: str,
) -> dict[str, str]:
    """The environment of a bench process and the servers it starts: its own database and Redis
    databases on the embedded (loopback) services, a bench-only key, local AI, offline models; the
    caller's ``overrides`` win. Refuses to run outside ``devservices exec`` or against a remote service."""
    services = bench_services(
        base, script=script, db_name=db_name, redis_db=redis_db, cache_db=cache_db, channels_db=channels_db
    )
    dropped = ("SECRET_KEY", "OPENAI_", "LLM_", "FEATURE_", "CELERY_", "DB_POOL_", *drop)
    env = {k: v for k, v in base.items() if not k.startswith(dropped)}
    env.update(
        services,
        SECRET_KEY=secret_key,
        SF_DATA_DIR=str(data_dir),
        DEBUG="0",
        LLM_PROVIDER="local",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def django_setup(env: dict[str, str], **overrides: str) -> None:
    """Django in the bench process itself (fixtures, reads afterwards), with ``env`` and ``overrides``."""
    os.environ.update(env)
    os.environ.update(overrides)
    import django

    django.setup()


def stop_on_sigterm() -> None:
    """A SIGTERM unwinds like Ctrl-C, so every ``finally`` stops the subprocesses it started."""

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)


def run_main(main, *, ignore_broken_pipe: bool = False) -> None:
    """A script's entry point: ``main()``'s return code is the exit status; Ctrl-C (or a SIGTERM, see
    ``stop_on_sigterm``) logs and exits 130 once the ``finally`` blocks have run. ``ignore_broken_pipe``
    for scripts whose output is often piped into ``head``."""
    try:
        with contextlib.suppress(BrokenPipeError) if ignore_broken_pipe else contextlib.nullcontext():
            sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)


# --- make run as a new user starts it, and a customer on its chat page -----------------------------------


REPLY_MARK = re.compile(r'class="msg msg-(?:ai|system)')


class Customer:
    """A browser without JavaScript: cookies, the CSRF token from the start form, the chat's catch-up URL
    polled every 50 ms until an AI reply or a handover notice is on the page."""

    def __init__(self, base: str) -> None:
        import http.cookiejar

        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def start(self, question: str) -> tuple[str, float, float]:
        """Post ``question`` with the start form; ``(catch-up URL, sent at, stored at)`` (monotonic)."""
        from urllib.parse import urlencode

        page = self.opener.open(f"{self.base}/chat/?new=1", timeout=10).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urlencode({"csrfmiddlewaretoken": token, "name": "Bench", "email": "", "body": question}).encode()
        headers = {"Referer": f"{self.base}/chat/"}
        request = urllib.request.Request(f"{self.base}/chat/?new=1", data=form, headers=headers)  # noqa: S310
        sent = time.monotonic()
        response = self.opener.open(request, timeout=30)
        stored = time.monotonic()
        chat = re.search(r"/chat/c/([^/]+)/", response.geturl())
        if chat is None:
            raise RuntimeError(f"the start form did not open a conversation: {response.geturl()}")
        return f"{self.base}/chat/c/{chat.group(1)}/messages/?after=1", sent, stored

    def page(self, url: str) -> str:
        return self.opener.open(url, timeout=10).read().decode()

    def wait_reply(self, url: str, *, since: float, timeout: float) -> tuple[float | None, str]:
        """Seconds from ``since`` until a reply is on the page, and its kind (``ai`` / ``handover``)."""
        while time.monotonic() - since < timeout:
            html = self.page(url)
            if REPLY_MARK.search(html):
                return time.monotonic() - since, "ai" if "msg msg-ai" in html else "handover"
            time.sleep(0.05)
        return None, "timeout"

    def ask(self, question: str, *, timeout: float) -> dict:
        url, sent, stored = self.start(question)
        seconds, kind = self.wait_reply(url, since=sent, timeout=timeout)
        return {
            "question": question,
            "reply_s": seconds,
            "after_stored_s": None if seconds is None else seconds - (stored - sent),
            "kind": kind,
        }


def readyz(base: str) -> dict | None:
    import json

    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:  # noqa: S310 — loopback
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


class MakeRun:
    """``python -m supportflow.devservices run`` — what ``make run`` starts — in a new temporary data
    directory on free loopback ports, with ``SF_WORKER_LAYOUT=layout`` and ``env`` on top; entering waits
    until ``/readyz`` reports a warm ``ai`` worker (``web_ready_s`` / ``ai_ready_s``: seconds from launch,
    ``None`` if it never came); leaving sends the Ctrl-C ``make run`` handles (children, then services)."""

    def __init__(self, *, layout: str = "split", env: dict[str, str] | None = None, start_timeout: float = 600):
        import tempfile

        self.data_dir = Path(tempfile.mkdtemp(prefix=f"sf-makerun-{layout}-"))
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "SF_DATA_DIR": str(self.data_dir),
            "SF_PG_PORT": str(free_port()),
            "SF_REDIS_PORT": str(free_port()),
            "SF_PORT": str(port),
            "SF_WORKER_LAYOUT": layout,
            "CHAT_RATE_START_PER_IP": "1000/60",  # every bench customer comes from 127.0.0.1
            **(env or {}),
        }
        for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SECRET_KEY_FILE"):
            self.env.pop(name, None)
        self.layout = layout
        self.start_timeout = start_timeout
        self.log_path = self.data_dir / "make-run.log"
        self.proc: subprocess.Popen | None = None
        self.web_ready_s: float | None = None
        self.ai_ready_s: float | None = None

    def __enter__(self) -> MakeRun:
        log(f"[{self.layout}] make run in {self.data_dir} (log {self.log_path})")
        started = time.monotonic()
        with self.log_path.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "supportflow.devservices", "run"],
                cwd=BASE_DIR,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.monotonic() - started < self.start_timeout and self.proc.poll() is None:
            body = readyz(self.base) or {}
            now = time.monotonic() - started
            if body.get("status") == "ok" and self.web_ready_s is None:
                self.web_ready_s = now
            workers = body.get("info", {}).get("ai_workers_ready")
            if isinstance(workers, int) and workers > 0:
                self.ai_ready_s = now
                break
            time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def worker_processes(self, queue: str = "ai") -> tuple[int | None, list[int]]:
        """The Celery worker consuming ``queue`` started by this make run: its main pid and its pool pids."""
        import psutil

        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                cmdline = proc.cmdline()
            except psutil.Error:
                continue
            consumes = "worker" in cmdline and "--queues" in cmdline and cmdline[cmdline.index("--queues") + 1] == queue
            main = proc.parent() is not None and "celery" not in " ".join(proc.parent().cmdline())
            if consumes and main:
                return proc.pid, [c.pid for c in proc.children()]
        return None, []
