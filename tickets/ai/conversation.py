"""Conversation acts: what a customer message is before it is a question. Today one act, the
acknowledgement ("thanks, that worked!"), which needs no answer and no human."""

from __future__ import annotations

ACK_WORDS = ("thank", "thanks", "thx", "danke", "gracias", "merci", "grazie", "bedankt", "obrigad", "perfect", "great")


def is_acknowledgement(body: str, triage: dict) -> bool:
    """ "Thanks, that worked!" needs no answer and no human: nothing to escalate."""
    text = " ".join(body.lower().split())
    return (
        len(text) <= 80
        and "?" not in text
        and any(word in text for word in ACK_WORDS)
        and triage.get("sentiment") != "negative"
        and "human_requested" not in triage.get("signals", ())
    )
