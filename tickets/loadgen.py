"""Realistic load data for the analytics pages: months of tickets with their conversations, AI runs and
drafts, escalations, SLA clocks, triage corrections, reopenings, CSAT and knowledge gaps.

A ticket comes with ~27 rows (messages, events, AI runs and drafts); 10,000 tickets take ~8 s on two
shared cores (bench/analytics_bench.py). Rows are built in Python and loaded with PostgreSQL ``COPY`` in
chunks of ``CHUNK`` tickets (one transaction each), with ids taken from the tables' own sequences and
references from ``tickets_ticket_reference_seq``, so tickets the app creates later never collide. No
service is called per row and no model runs: every AI figure (confidence, tokens, latency, cost at
``supportflow.llm``'s prices) is drawn, the way the pipeline would have recorded it.

What it needs: the queues, SLA policies and agents already in the database (``seed_demo`` loads them);
demo knowledge-base articles are cited when present. Each ticket is simulated through the same rules
the services apply (the state machine, first response, SLA due times and the sweep's breach flags,
escalation, reopen, auto-close after ``AUTO_CLOSE_RESOLVED_DAYS``, CSAT only once resolved), cut at
``end``: tickets created near the end are still new, open or pending.

Deterministic for a seed, ``end`` and starting database: the same draws give the same tickets, threads
and figures. Ids, references, access keys (secrets, drawn with ``secrets``) and the number in customer
e-mail addresses (offset by the customers already there) depend on the database. Running it again
adds another batch with new customers (the same seed repeats the same stories: pass another seed for
new ones); it never reuses or changes existing rows.

All texts are written for SupportFlow's fictional product, Nimbus Notes.
"""

# ruff: noqa: S311 — ``random`` draws synthetic data reproducibly; access keys come from ``secrets``

from __future__ import annotations

import datetime as dt
import json
import math
import random
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from supportflow.llm import cost_for
from tickets import sla
from tickets.ai.answer import INTRO, OUTRO, SEE_ALSO
from tickets.ai.rules import CATEGORY_DEPARTMENT
from tickets.models import (
    AgentProfile,
    AIDraft,
    AIRun,
    Customer,
    Department,
    EscalationRule,
    Message,
    Ticket,
    TicketEvent,
    TriageModel,
)
from tickets.services import HANDOVER_NOTICE

CHUNK = 2000
OPENAI_MODEL = "gpt-4o-mini"
PRIORITIES = ("low", "normal", "high", "urgent")
P_RANK = {p: i for i, p in enumerate(PRIORITIES)}
K = TicketEvent.Kind
S = Ticket.Status
ACTIVE = {S.NEW, S.OPEN, S.PENDING}

# --- what customers write ----------------------------------------------------------------------------

PLATFORMS = ("Android", "iPhone", "iPad", "Windows", "Mac", "the web app", "Linux in the browser")
VERSIONS = ("4.1.3", "4.2.0", "4.2.1", "4.3.0", "4.3.2", "4.4.0")
AMOUNTS = ("$5.99", "$59.99", "$7.99", "$79.99", "€6.49", "€64.99", "£5.49")

# category: [(subject, body)], {p} platform, {v} version, {a} amount, {n} a number
QUESTIONS: dict[str, list[tuple[str, str]]] = {
    "refund": [
        ("Refund for annual plan", "I renewed the annual plan by mistake yesterday ({a}). Can I have a refund?"),
        ("Money back please", "I cancelled last month but was still charged {a}. I'd like that refunded."),
        ("Charged twice", "My card shows two charges of {a} for Nimbus Pro today. Please refund one of them."),
    ],
    "payment_failed": [
        ("Card declined on renewal", "My renewal failed with 'card declined' but the card works everywhere else."),
        ("Payment failed", "I got an email that my payment failed. Will I lose my notes? How do I retry?"),
        ("Can't update card", "When I enter my new card in Settings → Billing it just spins and says error."),
    ],
    "invoice": [
        ("VAT number on invoice", "Our finance team needs our VAT number on the invoices. Where can I add it?"),
        ("Invoice copy", "Could you send me the invoices for the last {n} months as PDF for my expenses?"),
        ("Wrong company name on receipt", "The receipt shows my personal name, it should show our company."),
    ],
    "plan_change": [
        ("Downgrade to Free", "How do I go back to the Free plan at the end of my billing period?"),
        ("Switch to yearly", "I'm on monthly Pro. How do I switch to yearly billing, and what happens to this month?"),
        ("Cancel subscription", "Please help me cancel my subscription, I can't find the button on {p}."),
    ],
    "sync": [
        ("Sync stuck", "Sync on {p} has been stuck at {n}% since this morning. My latest notes are missing."),
        ("Notes not syncing", "Notes I write on my laptop don't appear on {p}. Version {v}."),
        ("Conflicting copies", "I keep getting 'conflicting copy' notes after editing offline on {p}."),
        ("Sync paused", "The sync icon shows a red exclamation mark on {p} and nothing uploads."),
    ],
    "app_crash": [
        ("App crashes on paste", "The desktop app on {p} closes as soon as I paste an image into a note. {v}."),
        ("Crash on start", "Since updating to {v} the app on {p} crashes right after the splash screen."),
        ("App freezes", "Nimbus freezes for a minute every time I open a big notebook on {p}."),
    ],
    "import_export": [
        ("Export to Markdown", "Is there a way to export a whole notebook as Markdown files for a backup?"),
        ("Import from Evernote", "I want to move {n} notebooks over from Evernote. What's the best way?"),
        ("Attachment too large", "I get 'file too large' when attaching a {n} MB video. What is the limit?"),
    ],
    "search": [
        ("Search misses notes", "Search doesn't find a note I know exists, even when I type its exact title."),
        ("Search in attachments", "Can search look inside PDF attachments? It finds nothing in mine on {p}."),
    ],
    "how_to": [
        ("Share a notebook", "How do I share a notebook with my team so everyone can edit it?"),
        ("Restore deleted note", "I deleted a note by accident {n} days ago. Can I get it back?"),
        ("Version history", "A colleague overwrote our meeting notes. Can I restore yesterday's version?"),
        ("Offline notebooks", "Which notebooks are available offline on {p}? I travel a lot."),
    ],
    "sign_in": [
        ("Can't sign in", "It says incorrect email or password, but I reset the password twice already."),
        ("Forgot password", "I forgot my password and the reset email never arrives."),
        ("Passkey sign-in", "Can I sign in with a passkey instead of a password on {p}?"),
        ("SSO sign-in fails", "Our team's SAML sign-in stopped working this morning with an 'invalid audience' error."),
    ],
    "two_factor": [
        ("Lost 2FA phone", "I lost the phone with my authenticator app and now I can't sign in."),
        ("Set up two-factor", "How do I turn on two-factor authentication with an authenticator app?"),
        ("2FA codes rejected", "The six-digit codes from my authenticator are always rejected on {p}."),
    ],
    "account_security": [
        ("Someone logged in", "I got an alert that someone logged in from a country I've never been to."),
        ("Account hacked?", "I think my account was hacked: there are notes I didn't write and my email changed."),
        ("Phishing email", "I received an email asking me to confirm my Nimbus password. Is that phishing?"),
    ],
    "data_request": [
        ("Delete my account", "Please delete my account and all my data. How do I get a copy first?"),
        ("Change email address", "I'm changing jobs. How do I move my account to my new email address?"),
        ("GDPR data request", "Under GDPR I'd like a copy of all personal data you hold about me."),
        ("Data region", "Can our workspace be moved from the US to the EU data region?"),
    ],
    "pricing": [
        ("Plan comparison", "What's the difference between Free, Pro and Teams? I mostly use {p}."),
        ("Trial question", "Do I need a credit card for the 14-day Pro trial?"),
        ("Price for {n} users", "What would Nimbus cost for {n} people? We need shared notebooks."),
    ],
    "team_plan": [
        ("Move to Teams", "Three of us pay for Pro separately. Can we move into one Teams workspace?"),
        ("Add seats", "If I add {n} seats in the middle of our annual Teams term, what do we pay?"),
        ("Admin console", "Where in the admin console do I remove a member who left the company?"),
    ],
    "discount": [
        ("Education pricing", "I teach a class of {n} students. Do you have education pricing?"),
        ("Non-profit discount", "We are a registered charity. Is there non-profit pricing for Teams?"),
    ],
    "quote": [
        ("Quote for {n} seats", "Could you send a quote for {n} Teams seats, billed annually, for our procurement?"),
        ("Purchase order", "Can we pay by bank transfer against a purchase order?"),
    ],
}

# A smaller set in other languages: (category, subject, body).
QUESTIONS_I18N: dict[str, list[tuple[str, str, str]]] = {
    "de": [
        ("sign_in", "Passwort vergessen", "Ich habe mein Passwort vergessen. Wie kann ich es zurücksetzen?"),
        ("invoice", "Rechnung als PDF", "Wo kann ich meine Rechnungen als PDF herunterladen?"),
        ("sync", "Synchronisierung hängt", "Die Synchronisierung auf {p} hängt seit heute Morgen bei {n} %."),
        ("refund", "Doppelt abgebucht", "Mir wurde das Jahresabo zweimal berechnet ({a}). Bitte erstatten."),
        ("how_to", "Notizbuch teilen", "Wie teile ich ein Notizbuch mit meinem Team?"),
        ("data_request", "Konto löschen", "Bitte löschen Sie mein Konto und alle meine Daten."),
        ("app_crash", "App stürzt ab", "Seit Version {v} stürzt die App auf {p} beim Start ab."),
    ],
    "es": [
        ("sign_in", "No puedo entrar", "Dice que la contraseña es incorrecta, pero ya la cambié dos veces."),
        ("refund", "Reembolso", "Me cobraron {a} después de cancelar. ¿Pueden devolverme el dinero?"),
        ("sync", "No sincroniza", "Las notas de mi portátil no aparecen en {p}. ¿Qué puedo hacer?"),
        ("pricing", "Precios", "¿Qué diferencia hay entre Free, Pro y Teams?"),
        ("import_export", "Exportar notas", "¿Cómo exporto todas mis notas a Markdown?"),
        ("two_factor", "Perdí mi móvil", "Perdí el móvil con la app de autenticación y no puedo entrar."),
    ],
    "fr": [
        (
            "sign_in",
            "Mot de passe oublié",
            "J'ai oublié mon mot de passe et l'e-mail de réinitialisation n'arrive pas.",
        ),
        ("sync", "Synchronisation bloquée", "La synchronisation sur {p} est bloquée à {n} % depuis ce matin."),
        ("invoice", "Facture avec TVA", "Comment ajouter notre numéro de TVA sur les factures ?"),
        ("plan_change", "Passer à l'annuel", "Comment passer de la facturation mensuelle à annuelle ?"),
        ("how_to", "Restaurer une note", "J'ai supprimé une note par erreur. Puis-je la récupérer ?"),
        ("discount", "Tarif éducation", "Je suis enseignant : avez-vous un tarif pour une classe de {n} élèves ?"),
    ],
}

GREETINGS = ("", "", "Hi, ", "Hello, ", "Hi there! ", "Good morning, ", "Hey, ")
SIGN_OFFS = ("", "", "", " Thanks!", " Thanks in advance.", " Cheers, {first}", " Best regards, {first}")
HUMAN_ASK = (
    " I'd rather talk to a person, please.",
    " Can a human look at this?",
    " Please connect me with a real agent.",
)
LEGAL_THREAT = (" If this isn't fixed I'll file a chargeback.", " Otherwise I will have to talk to a lawyer.")
ANGRY = (" This is the third time this month!!", " Honestly, this is really frustrating.", " I'm very upset.")

# Questions the knowledge base has no answer for, in a few words each: analytics groups them into gaps.
# topic: (nearest category, [paraphrases])
GAP_TOPICS: dict[str, tuple[str, list[str]]] = {
    "linux-app": (
        "how_to",
        [
            "Is there a Linux desktop app?",
            "Do you have a native app for Ubuntu?",
            "Will Nimbus Notes ever run on Linux without the browser?",
            "Any plans for a Linux version of the desktop client, maybe a Flatpak?",
        ],
    ),
    "paypal": (
        "plan_change",
        [
            "Can I pay with PayPal?",
            "Do you accept PayPal for the Pro plan?",
            "I don't have a credit card. Is PayPal possible?",
            "Is there a way to pay for Nimbus through my PayPal account?",
        ],
    ),
    "apple-watch": (
        "how_to",
        [
            "Is there an Apple Watch app?",
            "Can I dictate notes from my Apple Watch?",
            "Does Nimbus work on watchOS?",
        ],
    ),
    "handwriting": (
        "how_to",
        [
            "Can Nimbus turn my handwriting into text?",
            "Does the iPad app support Apple Pencil handwriting recognition?",
            "Is handwritten text searchable after I scribble with a stylus?",
        ],
    ),
    "self-hosted": (
        "team_plan",
        [
            "Can we self-host Nimbus on our own servers?",
            "Is there an on-premise version for our company?",
            "Do you offer a self-hosted edition for regulated industries?",
        ],
    ),
    "google-calendar": (
        "how_to",
        [
            "Can I link notes to Google Calendar events?",
            "Is there a Google Calendar integration for meeting notes?",
            "How do I connect my calendar so meeting notes are created automatically?",
        ],
    ),
    "crypto": (
        "plan_change",
        [
            "Can I pay with Bitcoin?",
            "Do you accept cryptocurrency payments?",
            "Is paying in USDC or another crypto possible?",
        ],
    ),
    "voice-transcription": (
        "how_to",
        [
            "Can Nimbus transcribe my voice memos?",
            "Is there speech to text for audio attachments?",
            "Does the app convert recorded audio into a written note?",
        ],
    ),
    "zapier": (
        "how_to",
        [
            "Do you have a Zapier integration?",
            "Is there a public API to create notes from other tools?",
            "Can I connect Nimbus to Make or Zapier to automate notes?",
        ],
    ),
    "family-plan": (
        "pricing",
        [
            "Is there a family plan?",
            "Can I share one Pro subscription with my partner and kids?",
            "Do you offer a discount for a household with four people?",
        ],
    ),
    "chromebook": (
        "app_crash",
        [
            "Is there an app for Chromebook?",
            "Does the Android app work on ChromeOS?",
            "Nimbus on my school Chromebook: is that supported?",
        ],
    ),
    "lifetime": (
        "pricing",
        [
            "Can I buy a lifetime licence instead of a subscription?",
            "Is there a one-time purchase option?",
            "Do you sell a perpetual licence for Nimbus Pro?",
        ],
    ),
    "custom-fonts": (
        "how_to",
        [
            "Can I use my own fonts in notes?",
            "How do I change the default font and size for all notes?",
            "Is it possible to install a custom font like a dyslexia-friendly one?",
        ],
    ),
    "local-currency": (
        "pricing",
        [
            "Can I pay in Indian rupees?",
            "Why is the price in dollars? Can I be billed in my local currency?",
            "Do you have regional pricing for Brazil?",
        ],
    ),
    "print-notebook": (
        "import_export",
        [
            "How do I print a whole notebook at once?",
            "Can I print several notes double-sided in one go?",
            "Is there a print layout for a full notebook with page breaks?",
        ],
    ),
}

FOLLOW_UP_UNHELPFUL = (
    "That didn't help, the problem is still there.",
    "I tried that already and it still doesn't work.",
    "That's not really what I asked.",
    "No, that article doesn't match my situation.",
)
FOLLOW_UP_HUMAN = (
    "That doesn't solve it. Can I talk to a person?",
    "Still broken. Please get a human to look at it.",
)
ACKS = ("Thanks, that worked!", "Perfect, thank you.", "Great, sorted. Thanks!", "That did it, thanks a lot.")
CUSTOMER_INFO = (
    "I'm on version {v} on {p}. Screenshot attached.",
    "Here you go: it's the account I'm writing from, on {p}.",
    "I tried again just now, same thing. Version {v}.",
    "Yes, that's the one. The order number is NN-{n}.",
    "Sorry for the delay. I restarted and it's still the same on {p}.",
)
CUSTOMER_DONE = ("All good now, thank you!", "That fixed it. Thanks for your help.", "Works again, thanks.")
REOPEN = (
    "Sorry, it's happening again since this morning.",
    "The problem is back after the latest update.",
    "It worked for a few days, but now it's broken again.",
    "I got charged again this month, same issue as before.",
)

AGENT_ASK = (
    "Hi {first}, thanks for reaching out. Could you tell me which version you're on and send a screenshot?",
    "Hi {first}, sorry about that. Can you confirm the email address on the account and when it started?",
    "Thanks {first}. To look into this I need the exact error message; could you copy it here?",
)
AGENT_ANSWER: dict[str, str] = {
    "billing": "Hi {first}, I've looked at your billing history and sorted this out: you'll see the change on "
    "your next statement within 3–5 business days.",
    "technical": "Hi {first}, thanks for the details. Please sign out and back in on {p}, then run Settings → "
    "Sync → Repair. That clears the stuck queue without losing unsynced notes.",
    "account-security": "Hi {first}, I've secured the account: all sessions are signed out and a reset link "
    "is on its way. Please turn on two-factor afterwards.",
    "sales": "Hi {first}, thanks for your interest! I've sent a quote to your email; it's valid for 30 days.",
    "": "Hi {first}, thanks for your patience. I've passed this to the right team and fixed it on our side.",
}
AGENT_DONE = (
    "Glad it's working! I'll mark this as resolved; reply here any time.",
    "Great to hear. Closing this one, have a good day!",
    "Happy to help. I'm resolving this ticket now.",
)
AGENT_I18N = {
    "de": "Hallo {first}, danke für Ihre Nachricht. Ich habe das Problem behoben; bitte prüfen Sie es noch einmal.",
    "es": "Hola {first}, gracias por escribirnos. Ya lo hemos solucionado; por favor, compruébalo de nuevo.",
    "fr": "Bonjour {first}, merci pour votre message. C'est corrigé de notre côté ; pouvez-vous vérifier ?",
}
NOTES = (
    "Checked the payment provider: the second charge is an uncaptured authorisation.",
    "Reproduced on {v}; known issue, linked to the bug tracker.",
    "Customer is on a Teams plan with {n} seats.",
    "Asked engineering about this in the sync channel.",
    "Security team informed; sessions revoked.",
    "Same customer wrote last month about this; see the earlier ticket.",
    "Refund issued in the billing dashboard.",
)
CSAT_COMMENTS = {
    5: ("Quick and clear answer.", "Fixed in minutes, thank you!", "Super helpful."),
    4: ("Good help, took a little while.", "Solved, thanks."),
    3: ("It's fine now but it took too long.", "OK."),
    2: ("Had to explain my problem twice.", "The first answer didn't help at all."),
    1: ("Still not fixed.", "Useless bot answers, nobody listened.", "Very slow and unhelpful."),
}

# category -> demo knowledge-base articles (file stems) that answer it; cited when they exist.
CATEGORY_ARTICLES: dict[str, tuple[str, ...]] = {
    "refund": ("refund-policy", "prorated-refunds-annual-plans", "why-was-i-charged-twice"),
    "payment_failed": ("failed-card-payment",),
    "invoice": ("add-vat-number-to-invoices", "rechnungen-herunterladen"),
    "plan_change": ("change-plan-or-billing-cycle", "compare-plans"),
    "sync": ("sync-stuck-or-paused", "reset-sync-on-android", "resolve-sync-conflicts", "offline-mode"),
    "app_crash": ("desktop-crash-on-paste",),
    "import_export": ("export-notes", "import-from-evernote-onenote-markdown", "attachment-size-limits"),
    "search": ("search-not-finding-notes",),
    "how_to": ("share-notes-and-notebooks", "version-history", "restore-deleted-notes", "offline-mode"),
    "sign_in": ("reset-your-password", "troubleshoot-sign-in-problems", "sign-in-with-passkeys", "set-up-saml-sso"),
    "two_factor": ("set-up-two-factor-authentication", "lost-two-factor-device"),
    "account_security": ("suspicious-sign-in-alerts",),
    "data_request": ("delete-account-and-export-data", "change-email-address", "choose-data-region"),
    "pricing": ("compare-plans", "free-trial"),
    "team_plan": ("teams-admin-console-overview", "teams-billing-seats-and-renewals", "move-pro-users-to-teams"),
    "discount": ("education-discount", "nonprofit-discount"),
    "quote": ("quotes-and-purchase-orders",),
}
CATEGORY_WEIGHTS = {
    "refund": 6, "payment_failed": 5, "invoice": 5, "plan_change": 6, "sync": 10, "app_crash": 6,
    "import_export": 5, "search": 3, "how_to": 10, "sign_in": 8, "two_factor": 4, "account_security": 3,
    "data_request": 4, "pricing": 5, "team_plan": 4, "discount": 3, "quote": 2,
}  # fmt: skip
CHANNEL_WEIGHTS = {"chat": 55, "email": 25, "api": 8, "slack": 7, "discord": 5}
LANGUAGE_WEIGHTS = {"en": 82, "de": 8, "es": 5, "fr": 5}

FIRST_NAMES = (
    "Ana", "Ben", "Chloé", "Daniel", "Elif", "Farah", "Gustav", "Hana", "Ivan", "Jana", "Kofi", "Lucía", "Mateo",
    "Nia", "Omar", "Paula", "Quentin", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Ximena", "Yusuf", "Zoe",
    "Aiko", "Bruno", "Carmen", "Dmitri", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Leo", "Mia",
    "Noah", "Olga", "Pedro", "Ravi", "Sara", "Tom", "Ursula", "Vera", "Will", "Yara", "Zainab",
)  # fmt: skip
LAST_NAMES = (
    "Silva", "Schmidt", "Nguyen", "Okafor", "García", "Kowalski", "Rossi", "Dubois", "Yilmaz", "Hansen", "Tanaka",
    "Müller", "Novak", "Costa", "Johansson", "Patel", "Kim", "Moreau", "Fischer", "Ortiz", "Mensah", "Ivanova",
    "Brown", "Lopez", "Wagner", "Haddad", "Sato", "Larsen", "Bianchi", "Chen", "Dimitrov", "Evans", "Fontaine",
)  # fmt: skip
DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "corp.example", "uni.example")


# --- what the database already has ----------------------------------------------------------------


@dataclass
class _Department:
    id: int
    slug: str
    name: str
    threshold: float
    auto_reply: bool
    calendar: sla.BusinessCalendar | None
    targets: dict[str, tuple[int, int]]  # priority -> (first response, resolution) minutes
    agents: list[tuple[int, str]] = field(default_factory=list)
    agent_weights: list[float] = field(default_factory=list)


@dataclass
class _Rule:
    name: str
    condition: str
    value: str
    reason: str
    set_priority: str


@dataclass
class _Context:
    departments: dict[str, _Department]
    by_category: dict[str, str]  # category -> department slug (present ones only)
    floaters: list[tuple[int, str]]  # who picks up unrouted tickets (managers first)
    articles: dict[str, dict]  # slug -> citation
    rules: list[_Rule]
    model_version: int
    auto_close_days: int


def _load_context() -> _Context:
    from knowledge.models import DEFAULT_NAMESPACE, Article, Chunk

    departments: dict[str, _Department] = {}
    for dep in (
        Department.objects.filter(is_active=True).select_related("sla_policy").prefetch_related("sla_policy__targets")
    ):
        policy = dep.sla_policy
        targets = (
            {t.priority: (t.first_response_minutes, t.resolution_minutes) for t in policy.targets.all()}
            if policy
            else {}
        )
        departments[dep.slug] = _Department(
            id=dep.pk,
            slug=dep.slug,
            name=dep.name,
            threshold=dep.ai_confidence_threshold,
            auto_reply=dep.ai_auto_reply,
            calendar=sla.BusinessCalendar.from_policy(policy),
            targets=targets,
        )
    if not departments:
        raise RuntimeError("No departments: run `manage.py seed_demo` (or create queues) before generating load.")
    floaters: list[tuple[int, str, bool]] = []
    profiles = (
        AgentProfile.objects.filter(user__is_active=True, user__is_staff=True)
        .select_related("user")
        .prefetch_related("departments", "user__groups")
        .order_by("user__username")
    )
    for profile in profiles:
        user = profile.user
        is_manager = any(g.name == "Managers" for g in user.groups.all())
        weight = 0.4 if is_manager else 1.0
        for dep in profile.departments.all():
            if dep.slug in departments:
                departments[dep.slug].agents.append((user.pk, user.get_username()))
                departments[dep.slug].agent_weights.append(weight)
        floaters.append((user.pk, user.get_username(), is_manager))
    floaters.sort(key=lambda f: (not f[2], f[1]))
    if not floaters:
        raise RuntimeError("No agents: run `manage.py seed_demo` (or add agent profiles) before generating load.")
    by_category = {c: d for c, d in CATEGORY_DEPARTMENT.items() if d in departments}
    fallback = sorted(departments)
    for i, category in enumerate(sorted(CATEGORY_DEPARTMENT)):
        by_category.setdefault(category, fallback[i % len(fallback)])

    articles: dict[str, dict] = {}
    first_chunks = {
        a: (c, end)
        for a, c, end in Chunk.objects.filter(position=0, namespace=DEFAULT_NAMESPACE).values_list(
            "article_id", "pk", "char_end"
        )
    }
    for pk, slug, title in Article.objects.filter(
        namespace=DEFAULT_NAMESPACE, status=Article.Status.PUBLISHED
    ).values_list("pk", "slug", "title"):
        chunk_id, char_end = first_chunks.get(pk, (None, 0))
        articles[slug] = {
            "title": title,
            "url": f"/help/articles/{slug}/",
            "chunk_id": chunk_id,
            "article_id": pk,
            "heading_path": "",
            "char_start": 0,
            "char_end": char_end,
        }
    rules = [
        _Rule(r.name, r.condition, r.value.strip().lower(), r.reason, r.set_priority)
        for r in EscalationRule.objects.filter(is_active=True).order_by("order", "pk")
    ]
    active = TriageModel.objects.filter(is_active=True).values_list("version", flat=True).first()
    return _Context(
        departments=departments,
        by_category=by_category,
        floaters=[(pk, name) for pk, name, _ in floaters],
        articles=articles,
        rules=rules,
        model_version=active or 1,
        auto_close_days=getattr(settings, "AUTO_CLOSE_RESOLVED_DAYS", 7),
    )


# --- when tickets arrive -----------------------------------------------------------------------------

HOUR_WEIGHTS = (
    0.25, 0.2, 0.18, 0.18, 0.2, 0.3, 0.5, 0.8, 1.2, 1.5, 1.6, 1.6,
    1.5, 1.5, 1.6, 1.6, 1.5, 1.3, 1.0, 0.8, 0.65, 0.5, 0.4, 0.3,
)  # fmt: skip
DAY_WEIGHTS = (1.15, 1.1, 1.05, 1.0, 0.9, 0.45, 0.4)  # Monday … Sunday


def _arrivals(
    rng: random.Random, count: int, start: dt.datetime, days: int
) -> tuple[list[dt.datetime], tuple[dt.datetime, dt.datetime]]:
    """``count`` creation times over ``days`` days from ``start``: busier on weekdays and in business
    hours (UTC), growing about 2.2× over the period, with one week of an incident (a bad release) at
    about 40 % of the way. Sorted, so ticket ids and references follow time like real ones."""
    hours = days * 24
    weights = []
    incident = (int(hours * 0.4), int(hours * 0.4) + 5 * 24)
    for h in range(hours):
        moment = start + dt.timedelta(hours=h)
        growth = 0.6 + 0.7 * (h / max(1, hours - 1)) ** 1.3
        w = growth * DAY_WEIGHTS[moment.weekday()] * HOUR_WEIGHTS[moment.hour]
        if incident[0] <= h < incident[1]:
            w *= 1.6
        weights.append(w)
    cumulative, total = [], 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    chosen = rng.choices(range(hours), cum_weights=cumulative, k=count)
    times = [start + dt.timedelta(hours=h, seconds=rng.random() * 3600) for h in chosen]
    times.sort()
    return times, (start + dt.timedelta(hours=incident[0]), start + dt.timedelta(hours=incident[1]))


# --- one ticket's life ---------------------------------------------------------------------------------


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _fill(rng: random.Random, text: str, first: str = "") -> str:
    return text.format(
        p=rng.choice(PLATFORMS), v=rng.choice(VERSIONS), a=rng.choice(AMOUNTS), n=rng.randint(2, 95), first=first
    )


def _clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


def _lognormal_minutes(rng: random.Random, median: float, sigma: float = 0.9) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _agent_time(rng: random.Random, t: dt.datetime, minutes: float, priority: str) -> dt.datetime:
    """When an agent gets to it: after ``minutes`` of queue time, but most agents work 05–23 UTC on
    weekdays and 07–21 at weekends (urgent tickets are picked up around the clock)."""
    when = t + dt.timedelta(minutes=minutes)
    if priority == "urgent" or rng.random() < 0.3:
        return when
    start, stop = (5, 23) if when.weekday() < 5 else (7, 21)
    if start <= when.hour < stop:
        return when
    day = when.date() if when.hour < start else when.date() + dt.timedelta(days=1)
    opens = 5 if day.weekday() < 5 else 7
    return dt.datetime.combine(day, dt.time(opens), dt.UTC) + dt.timedelta(minutes=rng.uniform(2, 90))


class _Stop(Exception):
    """The next step happens after ``end``: the ticket stays as it is."""


@dataclass
class _Spec:
    index: int
    created: dt.datetime
    customer: int  # index into the batch's customers
    customer_first: str
    vip: bool
    channel: str
    language: str
    category: str  # the true one
    gap: str  # knowledge-gap topic, or ""
    unrouted: bool


class _Sim:
    """One ticket simulated through the services' rules; rows use batch-local indexes, made ids on flush."""

    def __init__(self, ctx: _Context, spec: _Spec, rng: random.Random, end: dt.datetime, batch: _Batch) -> None:
        self.ctx, self.spec, self.rng, self.end, self.batch = ctx, spec, rng, end, batch
        self.t = spec.created
        self.status = S.NEW
        self.seq = 0
        self.first_response_at: dt.datetime | None = None
        self.last_customer_at: dt.datetime | None = None
        self.resolved_at: dt.datetime | None = None
        self.closed_at: dt.datetime | None = None
        self.reopen_count = 0
        self.paused_at: dt.datetime | None = None
        self.paused_minutes = 0
        self.fr_breached = self.res_breached = False
        self.escalated_at: dt.datetime | None = None
        self.escalation_reason = ""
        self.needs_human = False
        self.assignee: tuple[int, str] | None = None
        self.department: _Department | None = None
        self.priority = "normal"
        self.category = self.sentiment = self.language = ""
        self.csat: tuple[int, str, dt.datetime] | None = None
        self.ai_cost = Decimal(0)
        self.agent_replied = False
        self.ai_replies = 0
        self.last_activity = spec.created
        self.triage: dict = {}
        self.base_confidence, self.base_answerable = 0.0, True  # the first message's retrieval
        self.pending_drafts: list[int] = []  # batch indexes of drafts waiting for an agent
        self.events: list[tuple] = []
        self.ticket_idx = len(batch.tickets)
        batch.tickets.append(None)  # placeholder, filled by finish()

    # -- primitives

    def at(self, t: dt.datetime) -> dt.datetime:
        """Move the clock to ``t`` (not before now); the SLA sweep runs on the way; past ``end``: stop."""
        t = max(t, self.t + dt.timedelta(milliseconds=1))
        self._sweep(t)
        if t > self.end:
            raise _Stop
        self.t = t
        self.last_activity = t
        return t

    def event(
        self,
        kind: str,
        *,
        t: dt.datetime | None = None,
        actor: tuple[int, str] | None = None,
        actor_kind: str = "system",
        field: str = "",
        from_value: object = "",
        to_value: object = "",
        note: str = "",
    ) -> None:
        self.events.append(
            (
                t or self.t,
                kind,
                field,
                str(from_value)[:255],
                str(to_value)[:255],
                note,
                actor[0] if actor else None,
                actor_kind,
            )
        )

    def message(
        self,
        author_kind: str,
        body: str,
        *,
        user: tuple[int, str] | None = None,
        internal: bool = False,
        confidence: float | None = None,
        citations: list | None = None,
    ) -> int:
        self.seq += 1
        idx = len(self.batch.messages)
        self.batch.messages.append(
            [
                self.ticket_idx,
                self.seq,
                author_kind,
                user[0] if user else None,
                body,
                internal,
                confidence,
                json.dumps(citations or []),
                self.t,
            ]
        )
        if author_kind == "customer":
            self.last_customer_at = self.t
            if self.status in (S.PENDING, S.RESOLVED):
                self.transition(S.OPEN, actor_kind="customer")
        elif author_kind in ("agent", "ai") and not internal:
            if author_kind == "ai":
                self.ai_replies += 1
            if self.first_response_at is None:
                self.first_response_at = self.t
                due = self.fr_due()
                if due and self.t > due:
                    self.fr_breached = True
                self.event(K.FIRST_RESPONSE, actor=user, actor_kind=author_kind, to_value=author_kind)
            if self.status == S.NEW:
                self.transition(S.OPEN, actor=user, actor_kind=author_kind)
        return idx

    def transition(
        self, to: str, *, actor: tuple[int, str] | None = None, actor_kind: str = "system", note: str = ""
    ) -> None:
        before = self.status
        if before == S.PENDING and self.paused_at is not None:
            calendar = self.department.calendar if self.department else None
            self.paused_minutes += round(sla.minutes_between(self.paused_at, self.t, calendar))
            self.paused_at = None
        if to == S.PENDING and self.paused_at is None:
            self.paused_at = self.t
        if to == S.RESOLVED:
            self.resolved_at = self.t
            due = self.res_due()
            if due and self.t > due:
                self.res_breached = True
        if to == S.CLOSED:
            self.closed_at = self.t
            self.resolved_at = self.resolved_at or self.t
        if before == S.RESOLVED and to == S.OPEN:
            self.reopen_count += 1
            self.resolved_at = None
        self.status = to
        self.event(
            K.STATUS_CHANGED,
            actor=actor,
            actor_kind=actor_kind,
            field="status",
            from_value=before,
            to_value=to,
            note=note,
        )

    def _target(self) -> tuple[int, int] | None:
        if self.department is None:
            return None
        return self.department.targets.get(self.priority)

    def fr_due(self) -> dt.datetime | None:
        target = self._target()
        return sla.add_minutes(self.spec.created, target[0], self.department.calendar) if target else None

    def res_due(self) -> dt.datetime | None:
        target = self._target()
        if not target:
            return None
        return sla.add_minutes(self.spec.created, target[1] + self.paused_minutes, self.department.calendar)

    def _sweep(self, until: dt.datetime) -> None:
        """What the minute-by-minute SLA sweep would have done between now and ``until``."""
        until = min(until, self.end)
        if not self.fr_breached and self.first_response_at is None and self.status in ACTIVE:
            due = self.fr_due()
            if due and due < until:
                self._breach(
                    "first_response", min(until, max(due, self.t) + dt.timedelta(seconds=self.rng.uniform(1, 59)))
                )
        if not self.res_breached and self.status in (S.NEW, S.OPEN) and self.paused_at is None:
            due = self.res_due()
            if due and due < until:
                self._breach("resolution", min(until, max(due, self.t) + dt.timedelta(seconds=self.rng.uniform(1, 59))))

    def _breach(self, what: str, t: dt.datetime) -> None:
        if what == "first_response":
            self.fr_breached = True
        else:
            self.res_breached = True
        self.event(K.SLA_BREACHED, t=t, field=what)
        if self.escalated_at is None:
            label = "first response" if what == "first_response" else "resolution"
            self.escalate(f"SLA breached: {label} overdue", t=t)

    def escalate(
        self,
        reason: str,
        *,
        t: dt.datetime | None = None,
        actor_kind: str = "system",
        actor: tuple[int, str] | None = None,
    ) -> None:
        self.escalated_at = t or self.t
        self.escalation_reason = reason[:255]
        self.needs_human = True
        self.event(K.ESCALATED, t=t, actor=actor, actor_kind=actor_kind, note=reason)

    def set_priority(self, priority: str, *, actor: tuple[int, str] | None = None, actor_kind: str = "ai") -> None:
        if priority != self.priority:
            self.event(
                K.PRIORITY_CHANGED,
                actor=actor,
                actor_kind=actor_kind,
                field="priority",
                from_value=self.priority,
                to_value=priority,
            )
            self.priority = priority

    def set_department(
        self, dep: _Department | None, *, actor: tuple[int, str] | None = None, actor_kind: str = "ai"
    ) -> None:
        if dep is None or dep is self.department:
            return
        self.event(
            K.DEPARTMENT_CHANGED,
            actor=actor,
            actor_kind=actor_kind,
            field="department",
            from_value=self.department.name if self.department else "",
            to_value=dep.name,
        )
        self.department = dep
        if self.assignee and self.assignee not in dep.agents:
            self.event(
                K.ASSIGNED,
                actor=actor,
                actor_kind=actor_kind,
                field="assignee",
                from_value=self.assignee[1],
                note="Assignee does not work the new queue.",
            )
            self.assignee = None

    def assign(self, who: tuple[int, str], *, by: tuple[int, str] | None = None) -> None:
        if self.assignee == who:
            return
        self.event(
            K.ASSIGNED,
            actor=by,
            actor_kind="agent" if by else "system",
            field="assignee",
            from_value=self.assignee[1] if self.assignee else "",
            to_value=who[1],
        )
        self.assignee = who

    def pick_agent(self) -> tuple[int, str]:
        dep = self.department
        if dep and dep.agents:
            return self.rng.choices(dep.agents, weights=dep.agent_weights)[0]
        return self.ctx.floaters[0] if self.rng.random() < 0.7 else self.rng.choice(self.ctx.floaters)

    def run(
        self,
        kind: str,
        provider: str,
        model: str,
        message_idx: int,
        *,
        key: str,
        tokens: tuple[int, int] = (0, 0),
        latency: int,
        failed: str = "",
        fallback: bool = False,
        meta: dict | None = None,
    ) -> None:
        cost = cost_for(model, *tokens) if provider == "openai" and not failed else Decimal(0)
        self.ai_cost += cost
        started = self.t - dt.timedelta(milliseconds=latency)
        self.batch.runs.append(
            [
                key,
                self.ticket_idx,
                message_idx,
                kind,
                provider,
                model,
                tokens[0],
                tokens[1],
                cost,
                latency,
                "failed" if failed else "succeeded",
                failed,
                2 if failed else 1,
                fallback,
                json.dumps(meta or {}),
                started,
                self.t,
            ]
        )

    # -- the AI pipeline on one customer message

    def pipeline(
        self,
        message_idx: int,
        *,
        first: bool,
        confidence: float,
        answerable: bool,
        triggers: list[_Rule],
        acknowledgement: bool = False,
    ) -> str:
        """Triage, answer, gate; returns ``sent``, ``escalated``, ``drafted`` or ``acknowledged``."""
        rng = self.rng
        self.at(self.t + dt.timedelta(seconds=rng.uniform(0.3, 3.0)))
        remote = rng.random() < 0.22
        stages = {"guard_ms": rng.randint(4, 30), "triage_ms": rng.randint(15, 90)}
        self.at(self.t + dt.timedelta(milliseconds=stages["triage_ms"]))
        self.run(
            "triage",
            "local",
            "triage-local",
            message_idx,
            key="triage-local",
            latency=stages["triage_ms"],
            meta={"result": {"category": self.triage.get("category", "")}},
        )
        remote_failed = ""
        if remote:
            latency = int(_lognormal_minutes(rng, 900, 0.4))
            stages["triage_ms"] += latency
            remote_failed = rng.choice(("timeout", "rate_limited", "server_error")) if rng.random() < 0.04 else ""
            self.at(self.t + dt.timedelta(milliseconds=latency))
            self.run(
                "triage",
                "openai",
                OPENAI_MODEL,
                message_idx,
                key="triage",
                tokens=(0, 0) if remote_failed else (rng.randint(320, 680), rng.randint(60, 130)),
                latency=latency,
                failed=remote_failed,
                meta={"terminal": True, "reason": remote_failed} if remote_failed else {},
            )
        if first:
            self.apply_triage(remote and not remote_failed, remote_failed)
        if acknowledgement:
            self.batch.drafts.append(
                [
                    self.ticket_idx,
                    message_idx,
                    "",
                    "[]",
                    0.0,
                    "local",
                    "",
                    json.dumps({"stages_ms": stages, "acknowledged": True}),
                    "discarded",
                    None,
                    None,
                    self.t,
                    self.t,
                ]
            )
            return "acknowledged"
        stages["retrieve_ms"] = rng.randint(25, 140)
        articles = self.citations() if answerable else []
        reply_remote = remote and answerable and bool(articles)
        reply_failed = ""
        provider, model = "local", "extractive"
        if reply_remote:
            latency = int(_lognormal_minutes(rng, 2200, 0.35))
            reply_failed = rng.choice(("timeout", "server_error")) if rng.random() < 0.04 else ""
            self.at(self.t + dt.timedelta(milliseconds=stages["retrieve_ms"] + latency))
            self.run(
                "reply",
                "openai",
                OPENAI_MODEL,
                message_idx,
                key="reply",
                latency=latency,
                tokens=(0, 0) if reply_failed else (rng.randint(900, 2600), rng.randint(90, 320)),
                failed=reply_failed,
                meta={"terminal": True, "reason": reply_failed} if reply_failed else {},
            )
            stages["answer_ms"] = latency
            if not reply_failed:
                provider, model = "openai", OPENAI_MODEL
        if provider == "local":
            latency = rng.randint(40, 260)
            self.at(self.t + dt.timedelta(milliseconds=stages["retrieve_ms"] + latency))
            self.run(
                "reply",
                "local",
                "extractive",
                message_idx,
                key="reply-local",
                latency=latency,
                fallback=bool(reply_failed or remote_failed),
            )
            stages["answer_ms"] = stages.get("answer_ms", 0) + latency
        dep = self.department
        threshold = dep.threshold if dep else 0.6
        human_engaged = self.escalated_at is not None or self.agent_replied
        auto = (dep is None or dep.auto_reply) and not human_engaged
        send = auto and answerable and not triggers and confidence >= threshold
        if answerable and not triggers and confidence < threshold:
            triggers = [r for r in self.ctx.rules if r.condition == "low_confidence"][:1]
        similarity = round(_clamp(0.35 + 0.55 * confidence + rng.gauss(0, 0.04)), 4) if answerable else 0.0
        gate = {
            "confidence": round(confidence, 4),
            "threshold": threshold,
            "auto_reply_allowed": auto,
            "human_engaged": human_engaged,
            "triggers": [{"rule": r.name, "reason": r.reason, "set_priority": r.set_priority} for r in triggers],
            "evidence": {
                "similarity": similarity,
                "unit": round(_clamp(similarity + rng.gauss(0.05, 0.05)), 4),
                "agree": 1.0 if rng.random() < confidence else 0.0,
                "margin": round(_clamp(rng.gauss(0.08, 0.05)) * confidence, 4),
            }
            if answerable
            else {"reason": "no passage"},
            "unsupported": [],
            "stages_ms": stages,
            "total_ms": sum(stages.values()) + rng.randint(5, 40),
        }
        body = (
            self.ai_body(articles)
            if answerable
            else _fill(
                rng,
                "Hi {first}, thanks for getting in touch. I'm looking into this and will get back to you here shortly.",
                self.spec.customer_first,
            )
        )
        draft = [
            self.ticket_idx,
            message_idx,
            body,
            json.dumps(articles),
            round(confidence, 4),
            provider,
            model,
            json.dumps(gate),
            "sent" if send else "pending",
            None,
            None,
            self.t,
            self.t if send else None,
        ]
        draft_idx = len(self.batch.drafts)
        self.batch.drafts.append(draft)
        if send:
            sent = self.message("ai", body, confidence=round(confidence, 4), citations=articles)
            draft[9] = sent
            self.event(K.AI_ANSWERED, actor_kind="ai", note=f"confidence {confidence:.2f}")
            return "sent"
        reason = triggers[0].reason if triggers else "AI not confident enough to answer"
        self.event(K.AI_DRAFTED, actor_kind="ai", note=reason)
        self.pending_drafts.append(draft_idx)
        raised = max((r.set_priority for r in triggers if r.set_priority), key=lambda p: P_RANK[p], default="")
        if self.escalated_at is None:
            self.escalate(reason, actor_kind="ai")
            if raised and P_RANK[raised] > P_RANK[self.priority]:
                self.set_priority(raised)
            team = dep.name if dep else "support"
            self.message("system", HANDOVER_NOTICE.format(team=team))
            if self.assignee is None and dep and dep.agents:
                self.assign(self.pick_agent())
            return "escalated"
        if raised and P_RANK[raised] > P_RANK[self.priority]:
            self.set_priority(raised)
        return "drafted"

    def follow_up(self, message_idx: int, *, shift: float = -0.05) -> str:
        """The pipeline on a later customer message: it retrieves with the conversation so far, so the
        confidence stays near the first answer's; a person is already involved, so it only drafts."""
        answerable = self.base_answerable
        confidence = _clamp(self.base_confidence + self.rng.gauss(shift, 0.08)) if answerable else 0.0
        return self.pipeline(message_idx, first=False, confidence=confidence, answerable=answerable, triggers=[])

    def apply_triage(self, remote: bool, remote_failed: str) -> None:
        """The AI's triage of the first message: its guesses (right or not) and the events they write."""
        spec, ctx = self.spec, self.ctx
        guess = self.triage["category"]
        for name, value in (("category", guess), ("sentiment", self.triage["sentiment"]), ("language", spec.language)):
            self.event(K.TRIAGE_CHANGED, actor_kind="ai", field=name, to_value=value)
        self.category, self.sentiment, self.language = guess, self.triage["sentiment"], spec.language
        if P_RANK[self.triage["priority"]] > P_RANK[self.priority]:
            self.set_priority(self.triage["priority"])
        if not spec.unrouted:
            self.set_department(ctx.departments[ctx.by_category[guess]])
        self.event(
            K.AI_TRIAGED,
            actor_kind="ai",
            to_value=guess,
            note=f"openai {OPENAI_MODEL}" if remote else f"local triage-local-v{ctx.model_version}",
        )
        if remote_failed:
            self.triage["fallback"] = remote_failed
        self.triage["provider"] = "openai" if remote else "local"
        self.triage["model"] = OPENAI_MODEL if remote else f"triage-local-v{ctx.model_version}"

    def citations(self) -> list[dict]:
        slugs = [s for s in CATEGORY_ARTICLES.get(self.spec.category, ()) if s in self.ctx.articles]
        if not slugs:
            return []
        chosen = self.rng.sample(slugs, k=min(len(slugs), 1 if self.rng.random() < 0.6 else 2))
        return [{"n": n, **self.ctx.articles[s]} for n, s in enumerate(chosen, start=1)]

    def ai_body(self, citations: list[dict]) -> str:
        language = self.spec.language if self.spec.language in INTRO else "en"
        if not citations:
            return OUTRO[language]
        lines = [
            INTRO[language].format(title=citations[0]["title"]),
            "",
            "Open the app's settings, follow the steps in the article, then try again. [1]",
        ]
        if len(citations) > 1:
            lines += ["", SEE_ALSO[language].format(title=citations[1]["title"], ref="[2]")]
        return "\n".join([*lines, "", OUTRO[language]])

    # -- people

    def agent_reply(self, body: str, *, pending: bool = False, resolve: bool = False) -> None:
        """The assignee answers (using the AI's draft when there is one and it fits), maybe with a note."""
        rng = self.rng
        if self.assignee is None:
            self.assign(self.pick_agent(), by=None if self.department else self.ctx.floaters[0])
        agent = self.assignee
        if rng.random() < 0.25:
            self.message("agent", _fill(rng, rng.choice(NOTES)), user=agent, internal=True)
            self.at(self.t + dt.timedelta(minutes=rng.uniform(1, 20)))
        used = None
        for draft_idx in self.pending_drafts:
            draft = self.batch.drafts[draft_idx]
            if used is None and not pending and draft[4] >= 0.45 and rng.random() < 0.55:
                used = draft
                body = draft[2]
            elif rng.random() < 0.5:
                draft[8], draft[10], draft[12] = "discarded", agent[0], self.t
        self.pending_drafts = [
            i for i in self.pending_drafts if self.batch.drafts[i][8] == "pending" and self.batch.drafts[i] is not used
        ]
        idx = self.message("agent", body, user=agent)
        self.agent_replied = True
        if used is not None:
            used[8], used[9], used[10], used[12] = "used", idx, agent[0], self.t
        if pending:
            self.transition(S.PENDING, actor=agent, actor_kind="agent")
        if resolve:
            self.transition(S.RESOLVED, actor=agent, actor_kind="agent")

    def rate(self, score: int) -> None:
        comment = self.rng.choice(CSAT_COMMENTS[score]) if self.rng.random() < 0.35 else ""
        self.csat = (score, comment, self.t)
        self.event(K.CSAT_RECORDED, actor_kind="customer", field="csat_score", to_value=score, note=comment)

    # -- the row

    def finish(self, triage: dict) -> None:
        self.events.sort(key=lambda e: e[0])
        for e in self.events:
            self.batch.events.append([self.ticket_idx, *e])
        self.last_activity = max([self.last_activity, *(e[0] for e in self.events)])
        spec = self.spec
        self.batch.tickets[self.ticket_idx] = [
            triage["subject"],
            spec.customer,
            self.status,
            self.priority,
            spec.channel,
            self.category,
            self.sentiment,
            self.language,
            self.department.id if self.department else None,
            self.assignee[0] if self.assignee else None,
            self.escalated_at is not None,
            self.escalation_reason,
            self.escalated_at,
            self.needs_human,
            triage["summary"],
            json.dumps(triage["details"]),
            self.fr_due(),
            self.res_due(),
            self.paused_at,
            self.paused_minutes,
            self.fr_breached,
            self.res_breached,
            spec.created,
            self.last_activity,
            self.first_response_at,
            self.last_customer_at,
            self.resolved_at,
            self.closed_at,
            self.reopen_count,
            self.csat[0] if self.csat else None,
            self.csat[1] if self.csat else "",
            self.csat[2] if self.csat else None,
            self.ai_cost,
            self.seq,
        ]


def _simulate(ctx: _Context, spec: _Spec, end: dt.datetime, batch: _Batch, seed: int) -> None:
    rng = random.Random(seed * 1_000_003 + spec.index)
    sim = _Sim(ctx, spec, rng, end, batch)
    first = spec.customer_first

    # The first message and what triage will make of it.
    if spec.gap:
        _, paraphrases = GAP_TOPICS[spec.gap]
        text = rng.choice(paraphrases)
        subject = text.rstrip("?")[:60]
    elif spec.language != "en":
        options = QUESTIONS_I18N[spec.language]
        _, subject, text = next((o for o in options if o[0] == spec.category), options[0])
        text = _fill(rng, text)
    else:
        subject, text = rng.choice(QUESTIONS[spec.category])
        subject, text = _fill(rng, subject), _fill(rng, text)
    roll = rng.random()
    sentiment = "negative" if roll < 0.25 else "neutral" if roll < 0.8 else "positive"
    angry = sentiment == "negative" and rng.random() < 0.2
    human_asked = rng.random() < 0.04
    legal = rng.random() < 0.006
    if spec.language == "en" and not spec.gap:
        text = rng.choice(GREETINGS) + text + (rng.choice(ANGRY) if angry else "")
        text += rng.choice(HUMAN_ASK) if human_asked else ""
        text += rng.choice(LEGAL_THREAT) if legal else ""
        text += rng.choice(SIGN_OFFS).format(first=first)
    priority_roll = rng.random()
    true_priority = (
        "urgent"
        if spec.category == "account_security" and priority_roll < 0.5
        else "low"
        if priority_roll < 0.2
        else "normal"
        if priority_roll < 0.72
        else "high"
        if priority_roll < 0.93
        else "urgent"
    )
    category_confidence = _clamp(rng.betavariate(6, 1.6), 0.2, 0.995)
    guess = spec.category
    if rng.random() > 0.55 + 0.45 * category_confidence:  # the triage model is wrong more often when unsure
        same = [c for c, d in CATEGORY_DEPARTMENT.items() if d == CATEGORY_DEPARTMENT[spec.category]]
        pool = same if rng.random() < 0.7 else list(CATEGORY_DEPARTMENT)
        guess = rng.choice([c for c in pool if c != spec.category] or pool)
        category_confidence *= 0.7
    sim.triage = {"category": guess, "sentiment": sentiment, "priority": true_priority}
    sim.priority = "low" if true_priority == "low" else "normal"

    if spec.gap:
        answerable = rng.random() < 0.4  # a passage on a neighbouring topic, weakly matching
        confidence = _clamp(rng.gauss(0.42, 0.08), 0.2, 0.66) if answerable else 0.0
    else:
        answerable = bool(CATEGORY_ARTICLES.get(spec.category))
        confidence = _clamp(rng.gauss(0.74, 0.13), 0.15, 0.98)
        if guess != spec.category:
            confidence *= 0.8
    details = {
        "category": guess,
        "category_confidence": round(category_confidence, 4),
        "department": "" if spec.unrouted else ctx.by_category[guess],
        "department_confidence": round(_clamp(category_confidence + rng.gauss(0.03, 0.03)), 4),
        "priority": true_priority,
        "priority_confidence": round(rng.uniform(0.45, 0.95), 4),
        "sentiment": sentiment,
        "sentiment_score": round(
            rng.uniform(-1, -0.6)
            if angry
            else rng.uniform(-0.6, -0.1)
            if sentiment == "negative"
            else rng.uniform(0.2, 0.9)
            if sentiment == "positive"
            else rng.uniform(-0.1, 0.2),
            3,
        ),
        "language": spec.language,
        "needs_human": human_asked or legal or spec.vip,
        "needs_human_reason": "human requested" if human_asked else "",
        "out_of_scope": spec.unrouted,
        "summary": subject[:140],
        "signals": ["human_requested"] if human_asked else [],
        "model_version": ctx.model_version,
        "injection": {"flagged": False, "score": round(rng.uniform(0.01, 0.2), 3), "signals": []},
    }
    sim.triage.update(details)

    def matches(rule: _Rule) -> bool:
        c = rule.condition
        return (
            (c == "human_requested" and human_asked)
            or (
                c == "keywords"
                and rule.reason.startswith("Security")
                and spec.category == "account_security"
                and spec.language == "en"
                and not spec.gap
            )
            or (c == "keywords" and rule.reason.startswith("Legal") and legal)
            or (c == "priority_at_least" and P_RANK[true_priority] >= P_RANK.get(rule.value, 3))
            or (c == "sentiment_is" and angry)
            or (c == "vip" and spec.vip)
            or (c == "out_of_scope" and spec.unrouted)
            or (c == "no_answer" and not answerable)
        )

    triggers = [r for r in ctx.rules if matches(r)]
    sim.base_confidence, sim.base_answerable = confidence, answerable

    try:
        sim.event(K.CREATED, actor_kind="customer", to_value=spec.channel)
        m1 = sim.message("customer", text)
        outcome = sim.pipeline(m1, first=True, confidence=confidence, answerable=answerable, triggers=triggers)
        quality, by_ai = _after_first(sim, rng, spec, outcome, confidence, guess)
        if _maybe_reopen(sim, rng, spec, quality):
            quality, by_ai = min(quality, 0.5), False
        _maybe_rate(sim, rng, quality, ai=by_ai)
        if sim.status == S.RESOLVED and ctx.auto_close_days > 0:  # the beat closes it after N days
            days = ctx.auto_close_days
            sim.at(sim.resolved_at + dt.timedelta(days=days, minutes=rng.uniform(0, 2)))
            sim.transition(S.CLOSED, note=f"Resolved for {days} days")
            sim.event(K.AUTO_CLOSED, note=f"Resolved for {days} days")
    except _Stop:
        sim._sweep(end)
    sim.finish({"subject": subject[:255], "summary": subject[:140], "details": sim.triage})


def _after_first(
    sim: _Sim, rng: random.Random, spec: _Spec, outcome: str, confidence: float, guess: str
) -> tuple[float, bool]:
    """Everything after the AI's first decision up to the first resolution: the customer's reaction to an
    AI answer (better answers satisfy more often), or agents. Returns (how good the help was, 0–1;
    whether the AI alone resolved it), which drive reopening and CSAT."""
    first = spec.customer_first
    if outcome == "sent":
        wrong = spec.gap != "" or guess != spec.category
        p_ok = _clamp(0.35 + 1.2 * (confidence - 0.6) - (0.3 if wrong else 0.0), 0.05, 0.9)
        roll = rng.random()
        if roll < p_ok * 0.55:  # "thanks, that worked"
            sim.at(sim.t + dt.timedelta(minutes=_lognormal_minutes(rng, 6, 1.0)))
            ack = sim.message("customer", rng.choice(ACKS))
            sim.pipeline(ack, first=False, confidence=0.0, answerable=False, triggers=[], acknowledgement=True)
            _tidy_resolve(sim, rng, hours=rng.uniform(0.2, 3))
            return confidence, True
        if roll < p_ok:  # silent but satisfied: an agent resolves it while tidying the queue
            _tidy_resolve(sim, rng, hours=rng.uniform(1, 8))
            return confidence, True
        if rng.random() < 0.25:  # gave up without a word
            _tidy_resolve(sim, rng, hours=rng.uniform(2, 20))
            return confidence * 0.6, True
        sim.at(sim.t + dt.timedelta(minutes=_lognormal_minutes(rng, 12, 1.0)))
        asks_human = rng.random() < 0.4
        follow = sim.message("customer", rng.choice(FOLLOW_UP_HUMAN if asks_human else FOLLOW_UP_UNHELPFUL))
        rules = {r.condition: r for r in sim.ctx.rules}
        triggers = [rules["human_requested"]] if asks_human and "human_requested" in rules else []
        if not triggers and "ai_replies_at_least" in rules and sim.ai_replies >= 2:
            triggers = [rules["ai_replies_at_least"]]
        second = _clamp(confidence - rng.uniform(0.1, 0.3))
        sim.pipeline(follow, first=False, confidence=second, answerable=True, triggers=triggers)
        if sim.status == S.OPEN and sim.escalated_at is None:  # answered again by the AI; the customer goes quiet
            _tidy_resolve(sim, rng, hours=rng.uniform(2, 12))
            return second * 0.7, True
        _human(sim, rng, spec, first, guess)
        return 0.55, False
    _human(sim, rng, spec, first, guess)
    return 0.75, False


def _tidy_resolve(sim: _Sim, rng: random.Random, hours: float) -> None:
    """An AI-answered ticket resolved by an agent going through the queue (no reply of their own)."""
    agent = sim.pick_agent()
    sim.at(_agent_time(rng, sim.t, hours * 60, sim.priority))
    sim.transition(S.RESOLVED, actor=agent, actor_kind="agent", note="Answered by the AI")


def _human(sim: _Sim, rng: random.Random, spec: _Spec, first: str, guess: str) -> None:
    """An agent takes over: corrections, questions, pending, the answer, resolve (or close)."""
    ctx = sim.ctx
    median = {"urgent": 7, "high": 35, "normal": 120, "low": 300}[sim.priority]
    sim.at(_agent_time(rng, sim.t, _lognormal_minutes(rng, median, 0.8), sim.priority))
    if sim.department is None:  # unrouted: a manager picks it, and routes it half of the time
        picker = ctx.floaters[0]
        sim.assign(picker, by=picker)
        if rng.random() < 0.5:
            dep = ctx.departments[ctx.by_category[spec.category]]
            sim.set_department(dep, actor=picker, actor_kind="agent")
            if sim.assignee is None:
                sim.assign(sim.pick_agent(), by=picker)
    if sim.assignee is None:
        agent = sim.pick_agent()
        sim.assign(agent, by=agent)
    agent = sim.assignee
    if sim.category != spec.category and rng.random() < 0.85:  # the triage label was wrong: the agent fixes it
        sim.event(
            K.TRIAGE_CHANGED,
            actor=agent,
            actor_kind="agent",
            field="category",
            from_value=sim.category,
            to_value=spec.category,
        )
        sim.category = spec.category
        right = ctx.departments[ctx.by_category[spec.category]]
        if sim.department is not None and right is not sim.department:
            sim.set_department(right, actor=agent, actor_kind="agent")
            if sim.assignee is None:
                sim.assign(sim.pick_agent(), by=agent)
    if sim.priority == "normal" and rng.random() < 0.05:
        sim.set_priority(rng.choice(("low", "high")), actor=agent, actor_kind="agent")
    if sim.sentiment and sim.sentiment != "negative" and rng.random() < 0.03:
        sim.event(
            K.TRIAGE_CHANGED,
            actor=agent,
            actor_kind="agent",
            field="sentiment",
            from_value=sim.sentiment,
            to_value="negative",
        )
        sim.sentiment = "negative"
    dep_slug = sim.department.slug if sim.department else ""
    answer = AGENT_I18N.get(spec.language) or AGENT_ANSWER.get(dep_slug, AGENT_ANSWER[""])
    rounds = 0
    while rounds < 3 and rng.random() < (0.45 if rounds == 0 else 0.2):  # the agent needs more information
        rounds += 1
        sim.agent_reply(_fill(rng, rng.choice(AGENT_ASK), first), pending=True)
        sim.at(sim.t + dt.timedelta(minutes=_lognormal_minutes(rng, 240, 1.1)))
        info = sim.message("customer", _fill(rng, rng.choice(CUSTOMER_INFO)))
        sim.follow_up(info)
        sim.at(_agent_time(rng, sim.t, _lognormal_minutes(rng, median * 0.8), sim.priority))
    closes_directly = rng.random() < 0.08
    sim.agent_reply(_fill(rng, answer, first), resolve=not closes_directly and rng.random() < 0.65)
    if sim.status == S.OPEN and not closes_directly:
        sim.at(sim.t + dt.timedelta(minutes=_lognormal_minutes(rng, 60, 1.0)))
        if rng.random() < 0.6:
            done = sim.message("customer", rng.choice(CUSTOMER_DONE))
            sim.pipeline(done, first=False, confidence=0.0, answerable=False, triggers=[], acknowledgement=True)
            sim.at(_agent_time(rng, sim.t, _lognormal_minutes(rng, 30), sim.priority))
            sim.agent_reply(rng.choice(AGENT_DONE), resolve=True)
        else:
            sim.at(_agent_time(rng, sim.t, _lognormal_minutes(rng, 240), sim.priority))
            sim.transition(S.RESOLVED, actor=sim.assignee, actor_kind="agent")
    if closes_directly and sim.status in ACTIVE:
        sim.at(sim.t + dt.timedelta(minutes=rng.uniform(1, 30)))
        sim.transition(S.CLOSED, actor=sim.assignee, actor_kind="agent")


def _maybe_reopen(sim: _Sim, rng: random.Random, spec: _Spec, quality: float) -> bool:
    """Customers come back on a share of resolved tickets, more often after weak help (before it is
    closed automatically); an agent handles it again. True when it was reopened."""
    if sim.status != S.RESOLVED or rng.random() > 0.015 + 0.6 * (1.0 - quality) ** 2:
        return False
    hours = min(_lognormal_minutes(rng, 20, 0.9), max(1.0, sim.ctx.auto_close_days * 24 - 1.0))
    sim.at(sim.t + dt.timedelta(hours=hours))
    again = sim.message("customer", rng.choice(REOPEN))
    sim.follow_up(again, shift=-0.1)
    _human(sim, rng, spec, spec.customer_first, sim.category)
    return True


def _maybe_rate(sim: _Sim, rng: random.Random, quality: float, *, ai: bool) -> None:
    """CSAT on a share of resolved tickets, minutes to a day or two after the (last) resolution; skewed
    positive, lower after weak AI answers, SLA breaches and reopenings."""
    if sim.status not in (S.RESOLVED, S.CLOSED) or rng.random() > 0.35:
        return
    sim.at(sim.t + dt.timedelta(minutes=_lognormal_minutes(rng, 90, 1.3)))
    mean = 2.9 + 2.2 * quality - (0.6 if sim.fr_breached or sim.res_breached else 0.0) - 0.6 * sim.reopen_count
    mean += 0.2 if not ai else 0.0
    sim.rate(int(_clamp(round(rng.gauss(mean, 0.8)), 1, 5)))


# --- writing it -------------------------------------------------------------------------------------

CUSTOMER_COLUMNS = ("id", "name", "email", "is_vip", "created_at")
TICKET_COLUMNS = (
    "id", "reference", "access_key", "subject", "customer_id", "status", "priority", "channel", "category",
    "sentiment", "language", "department_id", "assignee_id", "escalated", "escalation_reason", "escalated_at",
    "needs_human", "ai_summary", "triage", "first_response_due_at", "resolution_due_at", "sla_paused_at",
    "sla_paused_minutes", "first_response_breached", "resolution_breached", "created_at", "updated_at",
    "first_response_at", "last_customer_message_at", "resolved_at", "closed_at", "reopen_count", "csat_score",
    "csat_comment", "csat_at", "ai_cost", "last_message_seq",
)  # fmt: skip
MESSAGE_COLUMNS = (
    "id", "ticket_id", "seq", "author_kind", "author_user_id", "body", "is_internal", "ai_confidence", "citations",
    "client_msg_id", "created_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "ticket_id", "created_at", "kind", "field", "from_value", "to_value", "note", "actor_id", "actor_kind",
)  # fmt: skip
RUN_COLUMNS = (
    "id", "key", "ticket_id", "message_id", "kind", "provider", "model", "tokens_in", "tokens_out", "cost",
    "latency_ms", "status", "error", "attempts", "fallback", "meta", "created_at", "finished_at", "prompt_version",
)  # fmt: skip
DRAFT_COLUMNS = (
    "id", "ticket_id", "in_reply_to_id", "body", "citations", "confidence", "provider", "model", "gate", "status",
    "sent_message_id", "used_by_id", "created_at", "decided_at",
)  # fmt: skip
TABLES = (
    (Customer, CUSTOMER_COLUMNS),
    (Ticket, TICKET_COLUMNS),
    (Message, MESSAGE_COLUMNS),
    (TicketEvent, EVENT_COLUMNS),
    (AIRun, RUN_COLUMNS),
    (AIDraft, DRAFT_COLUMNS),
)


def check_columns() -> None:
    """Every column of the tables written is given a value: COPY would put NULL (or fail) in one added
    later by a migration, so a new field must be added here first."""
    for model, columns in TABLES:
        expected = {f.column for f in model._meta.concrete_fields}
        if expected != set(columns):
            raise RuntimeError(
                f"tickets.loadgen is out of date for {model._meta.db_table}: "
                f"missing {sorted(expected - set(columns))}, unknown {sorted(set(columns) - expected)}"
            )


@dataclass
class _Batch:
    tickets: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    events: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    drafts: list = field(default_factory=list)


def _ids(cursor, table: str, count: int) -> list[int]:
    if count == 0:
        return []
    cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
    return [row[0] for row in cursor.fetchall()]


def _copy(cursor, table: str, columns: tuple[str, ...], rows) -> None:
    with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _write_customers(customers: list[tuple]) -> list[int]:
    with transaction.atomic(), connection.cursor() as cursor:
        ids = _ids(cursor, Customer._meta.db_table, len(customers))
        _copy(cursor, Customer._meta.db_table, CUSTOMER_COLUMNS, ((i, *c) for i, c in zip(ids, customers, strict=True)))
    return ids


def _write_batch(batch: _Batch, customer_ids: list[int]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        ticket_ids = _ids(cursor, Ticket._meta.db_table, len(batch.tickets))
        message_ids = _ids(cursor, Message._meta.db_table, len(batch.messages))
        event_ids = _ids(cursor, TicketEvent._meta.db_table, len(batch.events))
        run_ids = _ids(cursor, AIRun._meta.db_table, len(batch.runs))
        draft_ids = _ids(cursor, AIDraft._meta.db_table, len(batch.drafts))
        cursor.execute(
            "SELECT nextval('tickets_ticket_reference_seq') FROM generate_series(1, %s)", [len(batch.tickets)]
        )
        references = [f"SF-{row[0]:06d}" for row in cursor.fetchall()]
        _copy(
            cursor,
            Ticket._meta.db_table,
            TICKET_COLUMNS,
            (
                (ticket_ids[i], references[i], secrets.token_urlsafe(32), t[0], customer_ids[t[1]], *t[2:])
                for i, t in enumerate(batch.tickets)
            ),
        )
        _copy(
            cursor,
            Message._meta.db_table,
            MESSAGE_COLUMNS,
            ((message_ids[i], ticket_ids[m[0]], *m[1:8], "", m[8]) for i, m in enumerate(batch.messages)),
        )
        _copy(
            cursor,
            TicketEvent._meta.db_table,
            EVENT_COLUMNS,
            ((event_ids[i], ticket_ids[e[0]], *e[1:]) for i, e in enumerate(batch.events)),
        )
        _copy(
            cursor,
            AIRun._meta.db_table,
            RUN_COLUMNS,
            (
                (run_ids[i], f"{r[0]}:message:{message_ids[r[2]]}", ticket_ids[r[1]], message_ids[r[2]], *r[3:], "")
                for i, r in enumerate(batch.runs)
            ),
        )
        _copy(
            cursor,
            AIDraft._meta.db_table,
            DRAFT_COLUMNS,
            (
                (
                    draft_ids[i],
                    ticket_ids[d[0]],
                    message_ids[d[1]],
                    *d[2:9],
                    None if d[9] is None else message_ids[d[9]],
                    *d[10:],
                )
                for i, d in enumerate(batch.drafts)
            ),
        )


def _customers(rng: random.Random, count: int, base: int) -> list[dict]:
    """A pool of customers: name, e-mail (numbered from ``base`` so a second run never collides),
    language, VIP (2 %), and how often they write (a long tail: most once, a few many times)."""
    languages, weights = zip(*LANGUAGE_WEIGHTS.items(), strict=True)
    pool = []
    for k in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        vip = rng.random() < 0.02
        pool.append(
            {
                "first": first,
                "name": f"{first} {last}",
                "email": f"{_ascii(first)}.{_ascii(last)}.{base + k}@{rng.choice(DOMAINS)}",
                "vip": vip,
                "language": rng.choices(languages, weights)[0],
                "weight": (3.0 if vip else 1.0) / (k % 997 + 1) ** 0.55,
            }
        )
    return pool


def _fresh_emails(pool: list[dict]) -> None:
    """Skip numbers whose address someone already has (case-insensitively), e.g. from an import."""
    emails = [c["email"] for c in pool]
    taken: set[str] = set()
    for start in range(0, len(emails), 5000):
        part = emails[start : start + 5000]
        existing = Customer.objects.annotate(lowered=Lower("email")).filter(lowered__in=part)
        taken |= set(existing.values_list("lowered", flat=True))
    for customer in pool:
        if customer["email"] in taken:
            local, domain = customer["email"].split("@")
            customer["email"] = f"{local}.{secrets.token_hex(3)}@{domain}"


def generate(
    tickets: int,
    *,
    days: int = 365,
    seed: int = 1,
    end: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Add ``tickets`` simulated tickets created over the ``days`` days before ``end`` (default: now),
    with everything that happened to them until ``end``. Returns the rows written per table, the seconds
    it took and tickets/s. Needs the queues and agents of ``seed_demo``; see the module docstring."""
    if tickets < 1 or days < 1:
        raise ValueError("tickets and days must be at least 1")
    check_columns()
    started = time.perf_counter()
    say = progress or (lambda _text: None)
    end = end or timezone.now()
    start = end - dt.timedelta(days=days)
    ctx = _load_context()
    rng = random.Random(seed)

    times, incident = _arrivals(rng, tickets, start, days)
    base = (Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    pool = _customers(rng, max(1, round(tickets * 0.55)), base)
    picks = rng.choices(range(len(pool)), weights=[c["weight"] for c in pool], k=tickets)
    categories, category_weights = zip(*CATEGORY_WEIGHTS.items(), strict=True)
    channels, channel_weights = zip(*CHANNEL_WEIGHTS.items(), strict=True)
    gap_topics = sorted(GAP_TOPICS)
    gap_weights = [1.0 / (i + 1) ** 0.5 for i in range(len(gap_topics))]  # some gaps are asked far more often

    # Customers in the order they first write; each ticket refers to its customer's index.
    order: dict[int, int] = {}
    customer_rows: list[tuple] = []
    specs: list[_Spec] = []
    for index, (created, pick) in enumerate(zip(times, picks, strict=True)):
        customer = pool[pick]
        if pick not in order:
            order[pick] = len(customer_rows)
            customer_rows.append(
                (
                    customer["name"],
                    customer["email"],
                    customer["vip"],
                    created - dt.timedelta(seconds=rng.uniform(1, 30)),
                )
            )
        language = customer["language"]
        gap = rng.choices(gap_topics, gap_weights)[0] if language == "en" and rng.random() < 0.08 else ""
        if gap:
            category = GAP_TOPICS[gap][0]
        elif language != "en":
            category = rng.choice(QUESTIONS_I18N[language])[0]
        elif incident[0] <= created < incident[1] and rng.random() < 0.5:
            category = rng.choice(("sync", "sync", "app_crash"))
        else:
            category = rng.choices(categories, category_weights)[0]
        specs.append(
            _Spec(
                index=index,
                created=created,
                customer=order[pick],
                customer_first=customer["first"],
                vip=customer["vip"],
                channel=rng.choices(channels, channel_weights)[0],
                language=language,
                category=category,
                gap=gap,
                unrouted=not gap and rng.random() < 0.04,
            )
        )
    used = [pool[p] for p in sorted(order, key=order.get)]
    _fresh_emails(used)
    customer_rows = [(r[0], c["email"], r[2], r[3]) for r, c in zip(customer_rows, used, strict=True)]
    customer_ids = _write_customers(customer_rows)
    say(f"{len(customer_ids):,} customers; simulating {tickets:,} tickets from {start:%Y-%m-%d} to {end:%Y-%m-%d}")

    counts = {"customers": len(customer_ids), "tickets": 0, "messages": 0, "events": 0, "ai_runs": 0, "ai_drafts": 0}
    for first in range(0, tickets, CHUNK):
        batch = _Batch()
        for spec in specs[first : first + CHUNK]:
            _simulate(ctx, spec, end, batch, seed)
        _write_batch(batch, customer_ids)
        counts["tickets"] += len(batch.tickets)
        counts["messages"] += len(batch.messages)
        counts["events"] += len(batch.events)
        counts["ai_runs"] += len(batch.runs)
        counts["ai_drafts"] += len(batch.drafts)
        elapsed = time.perf_counter() - started
        say(
            f"  {counts['tickets']:,}/{tickets:,} tickets, {counts['messages']:,} messages "
            f"({counts['tickets'] / elapsed:,.0f} tickets/s)"
        )
    with connection.cursor() as cursor:  # fresh planner statistics for the pages that read it next
        cursor.execute("ANALYZE " + ", ".join(model._meta.db_table for model, _ in TABLES))
    seconds = time.perf_counter() - started
    return {**counts, "seconds": round(seconds, 2), "tickets_per_s": round(tickets / seconds, 1)}
