"""Sentiment of customer text: VADER's compound score (-1…1) and a negative/neutral/positive label.

The score (and the "angry" signal, score ≤ -0.6) is VADER's alone: predictable, lexicon-based intensity.
The label blends it with an embedding view when the triage model has one, and with the sentiment cues
of ``cues.py`` (sarcasm, plain complaints, emoji, negated praise: what VADER's lexicon misses) —
``blended_label``.

VADER is a rule-and-lexicon model (Hutto & Gilbert, 2014) shipped as ``vaderSentiment``: no training
data, no network, ~0.1 ms a message. Its lexicon is English; a few dozen strong words from the other
languages we see most (de, es, fr, it, nl, pt) are added with VADER-scale valences so an angry German
or Spanish message is not read as neutral. ``docs/eval-triage.md`` compares VADER, the blend, and an
embedding classifier trained on labelled tweets (best there, but it needs training data we cannot ship).
"""

from __future__ import annotations

import threading
from functools import lru_cache

NEGATIVE_BELOW = -0.05  # VADER's published thresholds
POSITIVE_ABOVE = 0.05
ANGRY_AT_MOST = -0.6  # "very upset" (VADER compound): the angry signal, a reason to involve a human
# The blend (docs/eval-triage.md): weights by 5-fold cross-validation on our sentiment seed, cut-offs on
# a documented tuning slice of 600 development tweets (never the figures' test part), both second pass.
BLEND_VADER_WEIGHT = 0.1
BLEND_CUE_WEIGHT = 0.45  # the embedding view weighs the rest, 0.45
BLEND_NEGATIVE_AT_MOST = -0.1
BLEND_POSITIVE_AT_LEAST = 0.1
# A question about a problem that has not happened (``cues.hypothetical_question``) keeps this share of a
# negative blend; third pass, by 5-fold cross-validation on our own seed at the weights and cut-offs above.
HYPOTHETICAL_DAMP = 0.25

# Valences on VADER's -4…+4 scale; single tokens as VADER splits them (lowercase, no punctuation).
_EXTRA_LEXICON = {
    # de
    "danke": 1.5,
    "super": 2.0,
    "toll": 2.0,
    "prima": 1.8,
    "zufrieden": 1.8,
    "hilfreich": 1.8,
    "enttäuscht": -2.0,
    "ärgerlich": -2.0,
    "wütend": -2.8,
    "sauer": -2.0,
    "frechheit": -3.0,
    "unverschämt": -3.0,
    "unverschämtheit": -3.0,
    "katastrophe": -3.0,
    "katastrophal": -3.0,
    "miserabel": -2.8,
    "schrecklich": -2.5,
    "inakzeptabel": -2.5,
    "betrug": -3.0,
    # es
    "gracias": 1.5,
    "genial": 2.2,
    "excelente": 2.7,
    "contento": 1.8,
    "contenta": 1.8,
    "decepcionado": -2.0,
    "decepcionada": -2.0,
    "furioso": -2.8,
    "furiosa": -2.8,
    "enfadado": -2.3,
    "enfadada": -2.3,
    "pésimo": -3.0,
    "pésima": -3.0,
    "vergüenza": -2.3,
    "inaceptable": -2.5,
    "estafa": -3.0,
    "horrible": -2.5,
    # fr
    "merci": 1.5,
    "génial": 2.2,
    "déçu": -2.0,
    "déçue": -2.0,
    "furieux": -2.8,
    "furieuse": -2.8,
    "inadmissible": -2.5,
    "inacceptable": -2.5,
    "nul": -2.0,
    "arnaque": -3.0,
    # it
    "grazie": 1.5,
    "ottimo": 2.5,
    "deluso": -2.0,
    "delusa": -2.0,
    "arrabbiato": -2.5,
    "arrabbiata": -2.5,
    "pessimo": -3.0,
    "vergogna": -2.3,
    "inaccettabile": -2.5,
    "truffa": -3.0,
    # nl
    "bedankt": 1.5,
    "prima's": 1.8,
    "teleurgesteld": -2.0,
    "boos": -2.3,
    "woedend": -3.0,
    "belachelijk": -2.5,
    "waardeloos": -2.8,
    "oplichting": -3.0,
    # pt
    "obrigado": 1.5,
    "obrigada": 1.5,
    "ótimo": 2.5,
    "decepcionante": -2.0,
    "péssimo": -3.0,
    "péssima": -3.0,
    "absurdo": -2.3,
    "inaceitável": -2.5,
    "golpe": -2.5,
}
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    with _lock:
        analyzer = SentimentIntensityAnalyzer()
        for word, valence in _EXTRA_LEXICON.items():
            analyzer.lexicon.setdefault(word, valence)
        return analyzer


def score(text: str) -> float:
    """VADER compound score of ``text``: -1 (very negative) … +1 (very positive)."""
    if not text.strip():
        return 0.0
    return float(_analyzer().polarity_scores(text[:5000])["compound"])


def label(compound: float) -> str:
    if compound <= NEGATIVE_BELOW:
        return "negative"
    if compound >= POSITIVE_ABOVE:
        return "positive"
    return "neutral"


def blended_label(compound: float, polarity: float, cue: float = 0.0, *, hypothetical: bool = False) -> str:
    """The label from VADER's compound score, the embedding view's polarity (P(positive) - P(negative),
    from the triage model's sentiment head, trained on our seed and agents' corrections) and the cue
    score (``cues.sentiment_cue_score``), each -1…1.

    VADER alone misses complaints without strong words ("my flight was delayed 3 hours"), which people
    reading support messages call negative, and reads sarcasm ("Thanks for nothing") as praise; the
    embedding view and the cues catch those. ``hypothetical``: the text asks about a problem that has not
    happened ("What happens if my flight is cancelled?", ``cues.hypothetical_question``); its negativity
    is damped (× ``HYPOTHETICAL_DAMP``). How the weights and cut-offs were chosen: docs/eval-triage.md.
    """
    embedding_weight = 1 - BLEND_VADER_WEIGHT - BLEND_CUE_WEIGHT
    blended = BLEND_VADER_WEIGHT * compound + BLEND_CUE_WEIGHT * cue + embedding_weight * polarity
    if hypothetical and blended < 0:
        blended *= HYPOTHETICAL_DAMP
    if blended <= BLEND_NEGATIVE_AT_MOST:
        return "negative"
    if blended >= BLEND_POSITIVE_AT_LEAST:
        return "positive"
    return "neutral"


def analyse(text: str) -> tuple[str, float]:
    """(label, compound score) of ``text``."""
    compound = score(text)
    return label(compound), compound


def is_angry(compound: float) -> bool:
    return compound <= ANGRY_AT_MOST
