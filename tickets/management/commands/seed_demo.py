"""Demo data for a fresh install: queues with SLAs, staff with generated passwords, a few conversations.

Runs once: a second call only prints the logins again. Everything here is our own writing about a
fictional product, Nimbus Notes (a note-taking app with sync and paid plans). Passwords are random
per install and kept in ``.data/demo-credentials.json`` (mode 600), never in the code.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings

from tickets import roles, services
from tickets.models import AgentProfile, Department, SLAPolicy, SLATarget

User = get_user_model()

SLA_TARGETS = {  # priority: (first response minutes, resolution minutes)
    "urgent": (15, 4 * 60),
    "high": (60, 8 * 60),
    "normal": (4 * 60, 24 * 60),
    "low": (8 * 60, 72 * 60),
}

DEPARTMENTS = [
    ("Billing", "billing", "Plans, invoices, refunds and payment problems.", "24x7"),
    ("Technical Support", "technical", "Sync, apps, import/export and bugs.", "24x7"),
    ("Account & Security", "account-security", "Sign-in, two-factor, suspicious activity, data requests.", "24x7"),
    ("Sales", "sales", "Team plans, education and non-profit pricing, quotes.", "business"),
]

STAFF = [
    # username, first name, role, departments, superuser
    ("admin", "Ada", None, [], True),
    ("alice", "Alice", roles.AGENTS, ["billing", "technical"], False),
    ("bob", "Bob", roles.AGENTS, ["technical", "account-security"], False),
    ("maria", "Maria", roles.MANAGERS, ["billing", "technical", "account-security", "sales"], False),
]

CONVERSATIONS = [
    {
        "customer": ("Priya Raman", "priya.raman@example.com"),
        "department": "billing",
        "priority": "normal",
        "subject": "Charged twice for my annual plan",
        "thread": [
            (
                "customer",
                "Hi, I upgraded to Nimbus Pro yesterday and my card shows two charges of $59.99. "
                "Can you refund one of them?",
            ),
            (
                "alice",
                "Hi Priya, sorry about that! I can see two payment attempts; the second one is a pending "
                "authorisation that your bank will release within 3–5 business days. Could you send a "
                "screenshot if it still shows after Friday?",
            ),
            ("note:alice", "Stripe shows the second attempt as 'uncaptured'. No refund needed unless it captures."),
        ],
        "assign": "alice",
        "then": "pending",
    },
    {
        "customer": ("Tomás Ortega", "tomas.ortega@example.com"),
        "department": "technical",
        "priority": "high",
        "subject": "Sync stuck at 87% on Android",
        "thread": [
            (
                "customer",
                "Since this morning the Android app says 'Syncing 87%' and never finishes. My laptop "
                "notes are not showing up on the phone. I have a presentation in two hours!",
            ),
        ],
    },
    {
        "customer": ("Hannah Becker", "hannah.becker@example.com"),
        "department": "account-security",
        "priority": "urgent",
        "subject": "Someone else logged into my account",
        "thread": [
            (
                "customer",
                "I got an email about a new sign-in from a city I have never been to. I changed my "
                "password but I'm worried. What else should I do?",
            ),
        ],
        "escalate": "Possible account takeover: security review needed",
        "assign": "bob",
    },
    {
        "customer": ("Kwame Mensah", "kwame.mensah@example.com"),
        "department": "technical",
        "priority": "low",
        "subject": "How do I export notebooks to Markdown?",
        "thread": [
            ("customer", "Is there a way to export a whole notebook as Markdown files? I want to keep a backup."),
            (
                "bob",
                "Yes! Open the notebook, choose ⋯ → Export → Markdown (.zip). Each note becomes one .md file "
                "and attachments go into an assets folder.",
            ),
            ("customer", "Found it, worked perfectly. Thanks!"),
        ],
        "assign": "bob",
        "then": "resolved",
        "csat": (5, "Quick and clear answer."),
    },
    {
        "customer": ("Lena Novak", "lena.novak@example.edu"),
        "department": "sales",
        "priority": "normal",
        "subject": "Education discount for a class of 30?",
        "thread": [
            (
                "customer",
                "I teach a design course and would like Nimbus Pro for 30 students for one semester. "
                "Do you offer education pricing?",
            ),
            (
                "maria",
                "Hello Lena, we do: education plans are 60% off per seat. I'll send a quote for 30 seats "
                "for 5 months today.",
            ),
        ],
        "assign": "maria",
    },
    {
        "customer": ("Oskar Lind", "oskar.lind@example.com"),
        "department": "billing",
        "priority": "low",
        "subject": "Invoice needs our VAT number",
        "thread": [
            ("customer", "Our accounting team needs the VAT number SE556677889901 on last month's invoice."),
            ("alice", "Done, Oskar: you can download the corrected invoice from Settings → Billing → Invoices."),
        ],
        "assign": "alice",
        "then": "closed",
    },
    {
        "customer": ("Mei Chen", "mei.chen@example.com"),
        "department": None,
        "priority": "normal",
        "subject": "App crashes when I paste an image",
        "thread": [
            (
                "customer",
                "On Windows 11 the desktop app closes as soon as I paste a screenshot into a note. Version 4.2.1.",
            ),
        ],
    },
]


def _credentials_path() -> Path:
    return Path(settings.DATA_DIR) / "demo-credentials.json"


# On the first load: a quarter of history for the analytics pages (about 2 s to generate).
DEMO_HISTORY_TICKETS = 2000
DEMO_HISTORY_DAYS = 90
DEMO_KB = Path(__file__).resolve().parents[3] / "knowledge" / "demo_kb"


class Command(BaseCommand):
    help = "Load the demo queues, staff, conversations and knowledge base once; print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-kb", action="store_true", help="Skip the demo knowledge base (embedding takes ~15 s)."
        )
        parser.add_argument(
            "--tickets",
            type=int,
            default=0,
            help="Then add this many simulated tickets for analytics (tickets.loadgen); each run adds more.",
        )
        parser.add_argument("--days", type=int, default=365, help="With --tickets: spread over this many days.")
        parser.add_argument("--seed", type=int, default=1, help="With --tickets: random seed (same seed, same data).")

    def handle(self, *args, **options) -> None:
        if not options["no_kb"]:
            self._load_kb()
        path = _credentials_path()
        first_load = not User.objects.filter(username="admin").exists()
        if not first_load:
            self.stdout.write("Demo data already loaded.")
        else:
            # The demo conversations are history (some already answered by agents): the AI leaves them be.
            with override_settings(FEATURE_AI_PIPELINE=False):
                passwords = self._load()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(passwords, indent=2))
            os.chmod(path, 0o600)
            self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self._ensure_triage_model()
        if first_load:
            self._history(DEMO_HISTORY_TICKETS, days=DEMO_HISTORY_DAYS, seed=1)
        self._scan_passages_soon()
        if options["tickets"] > 0:
            self._history(options["tickets"], days=options["days"], seed=options["seed"])
        self._print_logins(path)

    def _history(self, tickets: int, *, days: int, seed: int) -> None:
        """Simulated past tickets (tickets.loadgen), then the analytics rollups over them and the
        knowledge-gap groups, so the manager's pages have something to show from the first minute."""
        from analytics import gaps
        from tickets import loadgen

        counts = loadgen.generate(tickets, days=days, seed=seed, progress=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(f"History added: {counts.get('tickets', tickets)} tickets."))
        call_command("analytics_rollup", "--all", stdout=self.stdout)
        try:
            self.stdout.write(f"Knowledge gaps: {gaps.refresh()} groups of unanswered questions.")
        except Exception as exc:  # the embedding model is optional here: the nightly task regroups
            self.stderr.write(f"Knowledge gaps not grouped now ({exc}); the nightly task will do it.")

    def _scan_passages_soon(self) -> None:
        """The worker runs the injection guard over the demo passages in the background (about a minute
        on two cores), so the first chat question does not pay for it; beat would do it within 5 min."""
        from knowledge.models import Chunk
        from tickets import tasks

        if Chunk.objects.filter(is_public=True, injection_flagged__isnull=True).exists():
            try:
                tasks.scan_kb_passages.delay()
            except Exception as exc:  # no broker: the beat sweep and the first questions scan them
                self.stderr.write(f"Passage scan not queued ({exc}); it will run on the beat schedule.")

    def _ensure_triage_model(self) -> None:
        """A first, versioned triage model (v1) from the seed set, so the console shows which one runs."""
        from tickets.ai.triage import local as triage_local
        from tickets.models import TriageModel

        if not TriageModel.objects.exists():
            model = triage_local.train()
            self.stdout.write(f"Triage model v{model.version} trained on {model.trained_on}.")

    def _load_kb(self) -> None:
        from knowledge.models import Article
        from knowledge.services import ingest_files

        if Article.objects.filter(namespace="default").exists():
            return
        files = sorted(DEMO_KB.glob("*.md"))
        self.stdout.write(f"Indexing the demo knowledge base ({len(files)} articles)…")
        report = ingest_files(((f.name, f.read_bytes()) for f in files), default_status="published", source="written")
        for name, error in report.failed:
            self.stderr.write(f"  skipped {name}: {error}")
        self.stdout.write(f"Knowledge base: {report.ok} articles, {report.embedded} chunks embedded.")

    def _print_logins(self, path: Path) -> None:
        if not path.exists():
            self.stdout.write("Demo logins: see the credentials file of the install that loaded the data.")
            return
        passwords = json.loads(path.read_text())
        self.stdout.write(f"\nDemo logins (also in {path}):")
        for username, first_name, role, _, superuser in STAFF:
            what = "admin (superuser)" if superuser else f"{role[:-1].lower()} {first_name}"
            self.stdout.write(f"  {username:<6} / {passwords.get(username, '?'):<20} {what}")

    @transaction.atomic
    def _load(self) -> dict[str, str]:
        standard = SLAPolicy.objects.create(name="Standard (24×7)")
        business = SLAPolicy.objects.create(name="Business hours (Mon–Fri 9–17 UTC)", business_hours_only=True)
        for policy in (standard, business):
            for priority, (first, resolution) in SLA_TARGETS.items():
                SLATarget.objects.create(
                    policy=policy, priority=priority, first_response_minutes=first, resolution_minutes=resolution
                )
        departments = {
            slug: Department.objects.create(
                name=name,
                slug=slug,
                description=description,
                sla_policy=standard if calendar == "24x7" else business,
            )
            for name, slug, description, calendar in DEPARTMENTS
        }

        passwords: dict[str, str] = {}
        users = {}
        for username, first_name, role, slugs, superuser in STAFF:
            password = secrets.token_urlsafe(12)
            passwords[username] = password
            user = User.objects.create_user(
                username=username,
                first_name=first_name,
                email=f"{username}@nimbus-notes.example",
                password=password,
                is_staff=True,
                is_superuser=superuser,
            )
            if role:
                user.groups.add(Group.objects.get(name=role))
                profile = AgentProfile.objects.create(user=user)
                profile.departments.set([departments[s] for s in slugs])
            users[username] = user

        for convo in CONVERSATIONS:
            name, email = convo["customer"]
            customer = services.customer_get_or_create(email=email, name=name)
            (_, first_body), *rest = convo["thread"]
            ticket = services.ticket_create(
                customer=customer,
                subject=convo["subject"],
                body=first_body,
                priority=convo["priority"],
                department=departments.get(convo["department"]) if convo["department"] else None,
            )
            if convo.get("assign"):
                assignee = users[convo["assign"]]
                services.ticket_assign(ticket=ticket, assignee=assignee, actor=assignee)
            for author, body in rest:
                if author == "customer":
                    services.message_create(ticket=ticket, author_kind="customer", body=body)
                else:
                    internal = author.startswith("note:")
                    services.message_create(
                        ticket=ticket,
                        author_kind="agent",
                        author_user=users[author.removeprefix("note:")],
                        body=body,
                        is_internal=internal,
                    )
            if convo.get("escalate"):
                services.ticket_escalate(ticket=ticket, reason=convo["escalate"], actor=users["bob"])
            if convo.get("then"):
                actor = users[convo.get("assign", "alice")]
                services.ticket_change_status(ticket=ticket, to_status=convo["then"], actor=actor)
            if convo.get("csat"):
                score, comment = convo["csat"]
                services.ticket_record_csat(ticket=ticket, score=score, comment=comment)
        return passwords
