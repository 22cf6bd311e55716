"""``python -m supportflow.devservices run|exec|manage|up|down|status`` (see the package docstring)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from pathlib import Path

from supportflow.devservices.config import ServiceError
from supportflow.devservices.postgres import EmbeddedPostgres
from supportflow.devservices.redis import EmbeddedRedis
from supportflow.devservices.services import Services
from supportflow.devservices.supervisor import run_app, run_command, run_manage


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
            return run_app(env)
        if args.command == "manage":
            if not args.args:
                parser.error("manage needs a command, e.g. eval_email --data ../shared/datasets/email_cpython_testdata")
            return run_manage(args.args, env)
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            parser.error("exec needs a command")
        if shutil.which(cmd[0], path=env.get("PATH")) is None and not Path(cmd[0]).exists():
            parser.error(f"command not found: {cmd[0]}")
        return run_command(cmd, env)
    except KeyboardInterrupt:
        return 130
    finally:
        services.down()
