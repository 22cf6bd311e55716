"""The customers of a simulated history: names, e-mail addresses that never collide with existing ones,
languages, VIPs, and how often each writes."""

from __future__ import annotations

import random
import secrets
import unicodedata

from django.db.models.functions import Lower

from supportflow.demo.texts import DOMAINS, FIRST_NAMES, LAST_NAMES
from tickets.models import Customer

LANGUAGE_WEIGHTS = {"en": 82, "de": 8, "es": 5, "fr": 5}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def customer_pool(rng: random.Random, count: int, base: int) -> list[dict]:
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


def fresh_emails(pool: list[dict]) -> None:
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
