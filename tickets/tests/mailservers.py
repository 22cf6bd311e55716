"""Real mail servers on localhost for the email tests: aiosmtpd (SMTP, receives what we send) and
Debian's dovecot (IMAP, the mailbox we poll), each started in a temporary directory and stopped after.

dovecot runs in the foreground (``-F``) with its own config, a passwd-file user and a maildir under
the temp dir; ``make test`` installs ``dovecot-imapd`` when run as root (as it does chromium).
"""

from __future__ import annotations

import getpass
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpSink:
    """aiosmtpd in a thread; ``messages`` holds every email received, parsed."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content, policy=policy.default))
        return "250 OK"

    def start(self):
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


@dataclass
class Dovecot:
    """A throwaway dovecot IMAP server with one user, on a free localhost port."""

    tmp: Path
    user: str = "support"
    password: str = "imap-test-password"
    port: int = 0

    def start(self):
        if not os.path.exists(DOVECOT):
            raise RuntimeError("dovecot is not installed: apt-get install dovecot-imapd (make test does, as root)")
        self.port = free_port()
        me = getpass.getuser()
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:  # root: dovecot's own unprivileged users, created by the Debian package
            internal, login = "dovecot", "dovenull"
            mail_uid, mail_gid = pwd.getpwnam("dovecot").pw_uid, pwd.getpwnam("dovecot").pw_gid
        else:
            internal = login = me
            mail_uid, mail_gid = uid, gid
        for sub in ("run", "state", "mail", "home"):
            (self.tmp / sub).mkdir(parents=True, exist_ok=True)
        if uid == 0:
            for sub in ("mail", "home"):
                os.chown(self.tmp / sub, mail_uid, mail_gid)
            os.chmod(self.tmp, 0o755)  # noqa: S103 — dovecot's own users must reach the maildir
        (self.tmp / "passwd").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{mail_uid}:{mail_gid}::{self.tmp}/home\n"
        )
        conf = self.tmp / "dovecot.conf"
        conf.write_text(
            f"""
base_dir = {self.tmp}/run
state_dir = {self.tmp}/state
log_path = {self.tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {"dovecot" if uid == 0 else me}
default_login_user = {login}
mail_location = maildir:{self.tmp}/mail/%u
first_valid_uid = 0
passdb {{
  driver = passwd-file
  args = {self.tmp}/passwd
}}
userdb {{
  driver = passwd-file
  args = {self.tmp}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""
        )
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stdout.read().decode(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("dovecot did not start listening")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    @property
    def url(self) -> str:
        return f"imap://{self.user}:{self.password}@127.0.0.1:{self.port}/INBOX"

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def deliver(self, raw: bytes) -> None:
        """Put a message in the INBOX, unseen (as a mail client's APPEND or a delivery agent would)."""
        conn = self.client()
        try:
            typ, data = conn.append("INBOX", "", None, raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def flags(self) -> list[bytes]:
        conn = self.client()
        try:
            conn.select("INBOX")
            _, data = conn.fetch("1:*", "(FLAGS)")
            return [item for item in data if item]
        finally:
            conn.logout()
