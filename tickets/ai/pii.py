"""Personal data out of prompts: email addresses, phone numbers, payment cards and IBANs are replaced
by placeholders (``[EMAIL_1]``, ``[PHONE_1]``, ``[CARD_1]``, ``[IBAN_1]``) before text goes to a model,
and put back into what the model wrote for the same customer.

Precision over recall where the two conflict: a card number must pass the Luhn check and carry a
card network's prefix for its length; an IBAN must pass the ISO 13616 mod-97 check and have the length
registered for its country; a phone number needs a ``+``/``00`` country code, a trunk ``0`` with
separators, a US-style ``(555) 123-4567`` / ``555-123-4567``, or a phone word right before it, and is
skipped after words like "order", "invoice" or "Kundennr". So order numbers, dates, years, prices and
ticket references such as ``SF-000123`` stay as they are.

The same value (the same characters) gets the same placeholder within one text, so restoring gives
back exactly what was written; placeholders already in the text are kept and numbering continues
after them, so redacting twice changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KINDS = ("EMAIL", "IBAN", "CARD", "PHONE")  # overlap priority, highest first
PLACEHOLDER = re.compile(r"\[(EMAIL|PHONE|CARD|IBAN)_(\d+)\]")


@dataclass(frozen=True)
class Redacted:
    text: str
    mapping: dict[str, str] = field(default_factory=dict)


_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b", re.I)

# --- payment cards ------------------------------------------------------------------------------

_CARD = re.compile(r"(?<![\w+-])(?:\d[ -]?){12,18}\d(?![\w-])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_spans(text: str) -> list[tuple[int, int, str]]:
    spans = []
    for m in _CARD.finditer(text):
        raw = m.group(0)
        if "  " in raw or "--" in raw:
            continue
        digits = re.sub(r"\D", "", raw)
        if card_network_ok(digits) and len(set(digits)) > 1 and luhn_valid(digits):
            spans.append((m.start(), m.end(), raw))
    return spans


def card_network_ok(digits: str) -> bool:
    """The issuer prefix fits the length (Visa, Mastercard, Amex, Discover/UnionPay/Maestro, JCB,
    Diners): a Luhn-valid order number starting with 1 or 9 is not a card."""
    n = len(digits)
    if not 13 <= n <= 19:
        return False
    if digits[0] == "4":
        return n in {13, 16, 19}
    if digits[:2] in {"34", "37"}:
        return n == 15
    if "51" <= digits[:2] <= "55" or "2221" <= digits[:4] <= "2720":
        return n == 16
    if digits[:2] in {"36", "38", "39"} or "300" <= digits[:3] <= "305":
        return 14 <= n <= 19
    if "3528" <= digits[:4] <= "3589":
        return 16 <= n <= 19
    return digits[0] == "6" or digits[:2] in {"50", "56", "57", "58"}


# --- IBAN ---------------------------------------------------------------------------------------

# ISO 13616 registry: country → IBAN length.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})((?: ?[A-Za-z0-9]){11,30})", re.I)


def iban_valid(iban: str) -> bool:
    iban = iban.upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _iban_spans(text: str) -> list[tuple[int, int, str]]:
    """The greedy pattern may run into the next words ("… 00 or GB82…"); each candidate is cut at its
    country's length and the search resumes right after what was accepted (or one character on)."""
    spans = []
    pos = 0
    while m := _IBAN.search(text, pos):
        pos = m.start() + 1
        length = IBAN_LENGTHS.get(m.group(1).upper())
        if length is None:
            continue
        count, end = 0, m.start()
        for i in range(m.start(), m.end()):
            if text[i] != " ":
                count += 1
            if count == length:
                end = i + 1
                break
        if count != length or (end < len(text) and text[end].isalnum()):
            continue
        if iban_valid(text[m.start() : end].replace(" ", "")):
            spans.append((m.start(), end, text[m.start() : end]))
            pos = end
    return spans


# --- phone numbers ------------------------------------------------------------------------------

_SEP = r"[ .\-/]"
_INTERNATIONAL = re.compile(
    rf"(?<![\w+])(?:\+|00)[1-9]\d{{0,2}}(?:{_SEP}?\(0\))?(?:{_SEP}?\(?\d{{1,5}}\)?){{1,6}}(?!\w)"
)
_TRUNK = re.compile(rf"(?<![\w+./-])(?:\(0\d{{1,5}}\)|0\d{{1,5}})(?:{_SEP}?\d{{2,8}}){{1,4}}(?![\w/-])")
_NANP = re.compile(r"(?<![\w+./-])(?:1[ .-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])\d{3}[ .-]\d{4}(?![\w/-])")
_PHONE_WORD = re.compile(
    r"(?:phone|tel|telephone|mobile|cell|call(?:\s+me)?(?:\s+(?:at|on))?|fax|whats\s?app|reach\s+me\s+(?:at|on)|"
    r"telefon|tel\.|handy|mobil|rufnummer|festnetz|anrufen|téléphone|portable|teléfono|móvil|celular)"
    r"\s*(?:(?:no|nr|number|nummer|is|ist|:|\.|#)\s*)*$",
    re.I,
)
_PLAIN_DIGITS = re.compile(r"(?<![\w+./-])\d{7,15}(?![\w/-])")
_CONTINUES = re.compile(r"\d[ .-]$")  # part of a longer code ("DE89 3704 0044 …")
_DATE = re.compile(r"^(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}[./-]\d{1,2}[./-]\d{1,2})$")


def _phone_spans(text: str) -> list[tuple[int, int, str]]:
    spans = []
    for pattern in (_INTERNATIONAL, _TRUNK, _NANP):
        for m in pattern.finditer(text):
            raw = m.group(0).rstrip(" .-/")
            digits = re.sub(r"\D", "", raw)
            if not 7 <= len(digits) <= 15 or _DATE.match(raw) or _CONTINUES.search(text, 0, m.start()):
                continue
            if _REFERENCE_WORD.search(text[max(0, m.start() - 30) : m.start()]):
                continue
            if pattern is _INTERNATIONAL and (
                len(digits) < 8 or (raw.startswith("00") and (len(digits) < 10 or not re.search(_SEP, raw)))
            ):
                continue
            if pattern is _TRUNK and not re.search(_SEP + r"|\(", raw) and not _after_phone_word(text, m.start()):
                continue  # "0123456789" alone is as likely an order or customer number
            spans.append((m.start(), m.start() + len(raw), raw))
    for m in _PLAIN_DIGITS.finditer(text):
        if _after_phone_word(text, m.start()):
            spans.append((m.start(), m.end(), m.group(0)))
    return spans


_REFERENCE_WORD = re.compile(
    r"(?:order|bestell|invoice|rechnung|ticket|ref|reference|referenz|kunden|customer|tracking|sendung|auftrag|"
    r"vertrag|contract|account|konto|case|id|artikel|item|sku|serial|serien|commande|pedido|factura|facture)\w*"
    r"\s*(?:(?:no|nr|number|nummer|num|n°|#|:|\.)\s*)*$",
    re.I,
)


def _after_phone_word(text: str, start: int) -> bool:
    return bool(_PHONE_WORD.search(text[max(0, start - 30) : start]))


# --- redaction ----------------------------------------------------------------------------------


def _spans(text: str) -> list[tuple[int, int, str, str]]:
    """Non-overlapping (start, end, kind, key) in text order; on overlap the higher-priority kind wins,
    then the longer span."""
    found: list[tuple[int, int, str, str]] = []
    found += [(m.start(), m.end(), "EMAIL", m.group(0)) for m in _EMAIL.finditer(text)]
    found += [(s, e, "IBAN", key) for s, e, key in _iban_spans(text)]
    found += [(s, e, "CARD", key) for s, e, key in _card_spans(text)]
    found += [(s, e, "PHONE", key) for s, e, key in _phone_spans(text)]
    placeholders = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
    found.sort(key=lambda f: (KINDS.index(f[2]), -(f[1] - f[0]), f[0]))
    taken: list[tuple[int, int]] = list(placeholders)
    chosen = []
    for span in found:
        if all(span[1] <= s or span[0] >= e for s, e in taken):
            chosen.append(span)
            taken.append((span[0], span[1]))
    return sorted(chosen)


def redact(text: str) -> Redacted:
    """``text`` with emails, phone numbers, Luhn-valid card numbers and mod-97-valid IBANs replaced by
    numbered placeholders; ``mapping`` maps each placeholder to the original text."""
    text = text or ""
    counters = dict.fromkeys(KINDS, 0)
    for m in PLACEHOLDER.finditer(text):
        counters[m.group(1)] = max(counters[m.group(1)], int(m.group(2)))
    by_value: dict[tuple[str, str], str] = {}
    mapping: dict[str, str] = {}
    out: list[str] = []
    last = 0
    for start, end, kind, key in _spans(text):
        placeholder = by_value.get((kind, key))
        if placeholder is None:
            counters[kind] += 1
            placeholder = f"[{kind}_{counters[kind]}]"
            by_value[(kind, key)] = placeholder
            mapping[placeholder] = text[start:end]
        out += [text[last:start], placeholder]
        last = end
    out.append(text[last:])
    return Redacted(text="".join(out), mapping=mapping)


def restore(text: str, mapping: dict[str, str]) -> str:
    """Put the originals back for the placeholders in ``mapping``; any other placeholder stays."""
    if not mapping or not text:
        return text or ""
    return PLACEHOLDER.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)
