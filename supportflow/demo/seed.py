"""Demo data for a fresh install (``manage.py seed_demo``): queues with SLAs, staff with generated passwords,
a few conversations, the demo knowledge base, a first triage model and a quarter of simulated history.

Runs once: a second call only prints the logins again (and adds history when asked). The texts are in
``data/`` (``texts``): our own writing about a fictional product, Nimbus Notes (a note-taking app with
sync and paid plans). Passwords are random per install and kept in ``.data/demo-credentials.json``
(mode 600), never in the code.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import transaction
from django.test.utils import override_settings

from supportflow.demo import history
from supportflow.demo.ai import triage_model_train
from supportflow.demo.console import console_demo_load
from supportflow.demo.inbox import inbox_demo_load
from supportflow.demo.texts import CONVERSATIONS, MACROS, QUEUES, STAFF, WIDGET_SITE
from tickets import roles, services
from tickets.models import AgentProfile, Department, SLAPolicy, SLATarget

User = get_user_model()

SLA_TARGETS = {  # priority: (first response minutes, resolution minutes)
    "urgent": (15, 4 * 60),
    "high": (60, 8 * 60),
    "normal": (4 * 60, 24 * 60),
    "low": (8 * 60, 72 * 60),
}
ROLES = {"agents": roles.AGENTS, "managers": roles.MANAGERS}  # staff.json's role -> the group

# On the first load: a quarter of history for the analytics pages (about 2 s to generate).
DEMO_HISTORY_TICKETS = 2000
DEMO_HISTORY_DAYS = 90
DEMO_KB = Path(__file__).resolve().parents[2] / "knowledge" / "demo_kb"


class Writer(Protocol):
    def write(self, msg: str) -> None: ...


def credentials_path() -> Path:
    return Path(settings.DATA_DIR) / "demo-credentials.json"


def demo_seed(
    *,
    kb: bool = True,
    tickets: int = 0,
    days: int = 365,
    seed: int = 1,
    stdout: Writer,
    stderr: Writer,
    success: Callable[[str], str] = str,
) -> None:
    """Everything ``seed_demo`` does; ``tickets`` > 0 adds that many simulated tickets over ``days`` days
    after the demo data (each call adds more). ``success`` styles the lines that report a success."""
    if kb:
        kb_load(stdout=stdout, stderr=stderr)
    path = credentials_path()
    first_load = not User.objects.filter(username="admin").exists()
    if not first_load:
        stdout.write("Demo data already loaded.")
    else:
        # The demo conversations are history (some already answered by agents): the AI leaves them be.
        with override_settings(FEATURE_AI_PIPELINE=False):
            passwords = demo_load()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords, indent=2))
        os.chmod(path, 0o600)
        stdout.write(success("Demo data loaded."))
    triage_model_ensure(stdout=stdout)
    macros_ensure(stdout=stdout, stderr=stderr)
    widget_site_ensure(stdout=stdout)
    if first_load:
        history_add(DEMO_HISTORY_TICKETS, days=DEMO_HISTORY_DAYS, seed=1, stdout=stdout, stderr=stderr, success=success)
    passages_scan_soon(stderr=stderr)
    if tickets > 0:
        history_add(tickets, days=days, seed=seed, stdout=stdout, stderr=stderr, success=success)
    logins_print(path, stdout=stdout)
    customer_links_print(stdout=stdout)


def customer_links_print(*, stdout: Writer) -> None:
    """The customer's side of the demo conversations in other languages (their chat page and its rating)."""
    from tickets.models import Ticket
    from tickets.selectors import ticket_customer_token

    lines = []
    for convo in (c for c in CONVERSATIONS if c.get("language")):
        ticket = Ticket.objects.filter(subject=convo["subject"], customer__email=convo["customer"]["email"]).first()
        if ticket is not None:
            link = f"/chat/c/{ticket_customer_token(ticket=ticket)}/"
            lines.append(f"  {convo['language']}  {ticket.reference} ({ticket.get_status_display().lower()})  {link}")
    if lines:
        stdout.write("\nCustomer pages in other languages (open them on the running app):")
        for line in lines:
            stdout.write(line)


def history_add(
    tickets: int, *, days: int, seed: int, stdout: Writer, stderr: Writer, success: Callable[[str], str] = str
) -> None:
    """Simulated past tickets (``history.generate``), then the analytics rollups over them and the
    knowledge-gap groups, so the manager's pages have something to show from the first minute."""
    from analytics import gaps

    counts = history.generate(tickets, days=days, seed=seed, progress=stdout.write)
    stdout.write(success(f"History added: {counts.get('tickets', tickets)} tickets."))
    call_command("analytics_rollup", "--all", stdout=stdout)
    try:
        stdout.write(f"Knowledge gaps: {gaps.refresh()} groups of unanswered questions.")
    except Exception as exc:  # the embedding model is optional here: the nightly task regroups
        stderr.write(f"Knowledge gaps not grouped now ({exc}); the nightly task will do it.")


def passages_scan_soon(*, stderr: Writer) -> None:
    """The worker runs the injection guard over the demo passages in the background (about a minute
    on two cores), so the first chat question does not pay for it; beat would do it within 5 min."""
    from knowledge.models import Chunk
    from tickets.ai.tasks import scan_kb_passages  # the AI wing's door

    if Chunk.objects.filter(is_public=True, injection_flagged__isnull=True).exists():
        try:
            scan_kb_passages.delay()
        except Exception as exc:  # no broker: the beat sweep and the first questions scan them
            stderr.write(f"Passage scan not queued ({exc}); it will run on the beat schedule.")


def macros_ensure(*, stdout: Writer, stderr: Writer) -> None:
    """The demo macros (``data/macros.json``) that are missing: shared ones saved by the demo manager,
    personal ones by their owner. One that links an article the knowledge base lacks (``--no-kb``) is
    skipped with a note; a later run with the knowledge base adds it."""
    from django.core.exceptions import ValidationError

    from tickets.models import Macro

    manager = User.objects.filter(groups__name=roles.MANAGERS, is_active=True).order_by("pk").first()
    added = 0
    for spec in MACROS:
        owner = User.objects.filter(username=spec["owner"]).first() if spec["owner"] else None
        actor = owner or manager
        if actor is None or Macro.objects.filter(name__iexact=spec["name"], owner=owner).exists():
            continue
        department = Department.objects.filter(slug=spec["department"]).first() if spec["department"] else None
        macro = Macro(name=spec["name"], body=spec["body"], actions=spec["actions"], department=department)
        try:
            services.macro_save(macro=macro, actor=actor, shared=owner is None)
        except ValidationError as exc:
            stderr.write(f"  macro {spec['name']!r} skipped: {' '.join(exc.messages)}")
            continue
        added += 1
    if added:
        stdout.write(f"Macros: {added} added.")


def widget_site_ensure(*, stdout: Writer) -> None:
    """The demo site of the website widget (``data/widget.json``), once; says how to see it embedded."""
    from tickets.models import WidgetSite
    from tickets.widget.services import widget_site_create

    spec = WIDGET_SITE
    if not WidgetSite.objects.filter(public_key=spec["public_key"]).exists():
        widget_site_create(
            name=spec["name"],
            allowed_origins=spec["allowed_origins"],
            department=Department.objects.filter(slug=spec["department"]).first(),
            public_key=spec["public_key"],
        )
        stdout.write(
            f"Website widget: demo site {spec['public_key']} for {', '.join(spec['allowed_origins'])}; "
            f"see it on another origin with  python3 -m http.server 8001 -d {spec['page']}  "
            "then open http://localhost:8001/ (docs/widget.md)."
        )


def triage_model_ensure(*, stdout: Writer) -> None:
    """A first, versioned triage model (v1) from the seed set, so the console shows which one runs."""
    from tickets.models import TriageModel

    if not TriageModel.objects.exists():
        model = triage_model_train()
        stdout.write(f"Triage model v{model.version} trained on {model.trained_on}.")


def kb_load(*, stdout: Writer, stderr: Writer) -> None:
    """The demo knowledge base (``knowledge/demo_kb``), published, unless the default namespace has articles."""
    from knowledge.models import Article
    from knowledge.services import ingest_files

    if Article.objects.filter(namespace="default").exists():
        return
    files = sorted(DEMO_KB.glob("*.md"))
    stdout.write(f"Indexing the demo knowledge base ({len(files)} articles)…")
    report = ingest_files(((f.name, f.read_bytes()) for f in files), default_status="published", source="written")
    for name, error in report.failed:
        stderr.write(f"  skipped {name}: {error}")
    stdout.write(f"Knowledge base: {report.ok} articles, {report.embedded} chunks embedded.")


def logins_print(path: Path, *, stdout: Writer) -> None:
    if not path.exists():
        stdout.write("Demo logins: see the credentials file of the install that loaded the data.")
        return
    passwords = json.loads(path.read_text())
    stdout.write(f"\nDemo logins (also in {path}):")
    for member in STAFF:
        username, role = member["username"], ROLES.get(member["role"])
        what = "admin (superuser)" if member["superuser"] else f"{role[:-1].lower()} {member['first_name']}"
        stdout.write(f"  {username:<6} / {passwords.get(username, '?'):<20} {what}")


def staff_create(
    *,
    username: str,
    role: str | None,
    departments=(),
    password: str | None = None,
    first_name: str = "",
    email: str = "",
    superuser: bool = False,
):
    """An active staff user; with a ``role`` ("agents" or "managers", as in ``data/staff.json``) also in that
    group, with an agent profile working ``departments``. No ``password``: the user cannot log in with one."""
    user = User.objects.create_user(
        username=username,
        first_name=first_name,
        email=email,
        password=password,
        is_staff=True,
        is_superuser=superuser,
    )
    if role:
        user.groups.add(Group.objects.get(name=ROLES[role]))
        profile = AgentProfile.objects.create(user=user)
        profile.departments.set(departments)
    return user


@transaction.atomic
def demo_load() -> dict[str, str]:
    """The demo queues, SLA policies, staff and conversations; returns each staff member's new password."""
    standard = SLAPolicy.objects.create(name="Standard (24×7)")
    business = SLAPolicy.objects.create(name="Business hours (Mon–Fri 9–17 UTC)", business_hours_only=True)
    for policy in (standard, business):
        for priority, (first, resolution) in SLA_TARGETS.items():
            SLATarget.objects.create(
                policy=policy, priority=priority, first_response_minutes=first, resolution_minutes=resolution
            )
    departments = {
        queue["slug"]: Department.objects.create(
            name=queue["name"],
            slug=queue["slug"],
            description=queue["description"],
            sla_policy=standard if queue["calendar"] == "24x7" else business,
        )
        for queue in QUEUES
    }

    passwords: dict[str, str] = {}
    users = {}
    for member in STAFF:
        username = member["username"]
        passwords[username] = secrets.token_urlsafe(12)
        users[username] = staff_create(
            username=username,
            role=member["role"],
            departments=[departments[s] for s in member["departments"]],
            password=passwords[username],
            first_name=member["first_name"],
            email=f"{username}@nimbus-notes.example",
            superuser=member["superuser"],
        )

    for convo in CONVERSATIONS:
        customer = services.customer_get_or_create(email=convo["customer"]["email"], name=convo["customer"]["name"])
        first, *rest = convo["thread"]
        language = convo.get("language", "")  # a customer writing (and browsing) in German, Spanish, French
        ticket = services.ticket_create(
            customer=customer,
            subject=convo["subject"],
            body=first["body"],
            priority=convo["priority"],
            department=departments.get(convo["department"]) if convo["department"] else None,
            ui_language=language,
        )
        if language:  # what triage would have detected
            ticket = services.ticket_update_triage(ticket=ticket, actor_kind="ai", language=language)
        if convo.get("assign"):
            assignee = users[convo["assign"]]
            services.ticket_assign(ticket=ticket, assignee=assignee, actor=assignee)
        for message in rest:
            author, body = message["author"], message["body"]
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
            services.ticket_record_csat(ticket=ticket, score=convo["csat"]["score"], comment=convo["csat"]["comment"])
    inbox_demo_load(users=users, departments=departments)
    console_demo_load(users=users, departments=departments)
    return passwords
