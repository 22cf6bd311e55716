"""What runs on top of the services: the ``make run`` supervisor (migrate, periodic tasks, demo data,
then web + an ai worker + a housekeeping worker + beat with their output interleaved, and "ready" once an
ai worker is warm), ``manage`` and a single command for ``exec``.
Ctrl-C lets the children stop first, so the services never vanish under them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from supportflow.devservices.config import BASE_DIR, DATA_DIR


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


HOUSEKEEPING_NICE = 10


def _worker(name: str, queues: str, concurrency: str) -> list[str]:
    return _python(
        "-m",
        "celery",
        "-A",
        "supportflow",
        "worker",
        "--loglevel",
        "INFO",
        "--hostname",
        f"{name}@%h",
        "--queues",
        queues,
        "--concurrency",
        concurrency,
    )


def _announce_when_ready(base: str, procs: dict[str, subprocess.Popen], lock: threading.Lock) -> None:
    """Print "ready" once the web answers and an ai worker is warm (``/readyz``'s ``ai_workers_ready``):
    from then on the first answer comes in seconds, not while models load."""
    import json
    import urllib.request

    started = time.monotonic()
    while all(p.poll() is None for p in procs.values()):
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:  # noqa: S310 — our own loopback
                info = json.loads(response.read()).get("info", {})
            if isinstance(info.get("ai_workers_ready"), int) and info["ai_workers_ready"] > 0:
                with lock:
                    print(f"\nSupportFlow is ready ({time.monotonic() - started:.0f} s): {base}/chat/\n", flush=True)
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)


def run_app(env: dict[str, str]) -> int:
    _ensure_secret_key(env)
    (BASE_DIR / "staticfiles").mkdir(exist_ok=True)  # whitenoise serves from the finders; it wants the root
    host = os.environ.get("SF_HOST", "127.0.0.1")
    port = os.environ.get("SF_PORT", "8000")
    manage = str(BASE_DIR / "manage.py")
    subprocess.run(_python(manage, "migrate", "--noinput"), env=env, check=True)
    subprocess.run(_python(manage, "setup_periodic_tasks"), env=env, check=True)
    subprocess.run(_python(manage, "seed_demo"), env=env, check=True)

    web_workers = os.environ.get("SF_WEB_WORKERS", "1")
    commands = {
        # several processes use every core; websockets, groups and rate limits live in Redis
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
            *(["--workers", web_workers] if web_workers != "1" else []),
        ),
        # a customer's answer never waits behind housekeeping: the ai queue has its own worker
        # (SF_WORKER_LAYOUT=single: one worker on every queue, as before, for a small machine or a comparison)
        **(
            {"worker": _worker("worker", "ai,housekeeping,celery", os.environ.get("SF_WORKER_CONCURRENCY", "2"))}
            if os.environ.get("SF_WORKER_LAYOUT") == "single"
            else {
                "ai": _worker("ai", "ai", os.environ.get("SF_AI_CONCURRENCY", "2")),
                "worker": _worker("housekeeping", "housekeeping,celery", os.environ.get("SF_WORKER_CONCURRENCY", "1")),
            }
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
            # housekeeping yields the CPU to the customer's answers (a scan right after start, a retrain)
            preexec_fn=(lambda: os.nice(HOUSEKEEPING_NICE)) if name == "worker" and "ai" in commands else None,
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
    threading.Thread(target=_announce_when_ready, args=(base, procs, lock), daemon=True).start()
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
        print("\nStopping web, workers and beat...", flush=True)
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


def run_manage(argv: list[str], env: dict[str, str]) -> int:
    """``manage.py ARGS`` as a fresh clone can run it (``make eval``): the install's local SECRET_KEY, as
    ``run`` makes it, and the schema migrated first."""
    _ensure_secret_key(env)
    manage = str(BASE_DIR / "manage.py")
    migrate = run_command(_python(manage, "migrate", "--noinput", "--verbosity", "0"), env)
    return migrate or run_command(_python(manage, *argv), env)


def run_command(cmd: list[str], env: dict[str, str]) -> int:
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
