"""Follow-up turns get the context they lean on; turns that stand alone, greetings included, do not."""

from __future__ import annotations

import pytest

from tickets.ai.followup import Turn, contextual_query, extract_entities, followup, is_followup

HISTORY = [
    Turn("customer", "Hi there!"),
    Turn("assistant", "Hello! How can I help?"),
    Turn("customer", "How do I export my notes on my iPhone?"),
    Turn("assistant", "Open Settings, then Export.", ["Export notes as Markdown"]),
]


@pytest.mark.parametrize(
    "turn",
    ["and as PDF?", "what if I lose it?", "Does that work offline too?", "why?", "What about the web app?"],
)
def test_a_follow_up_gets_the_open_question_and_the_cited_title(turn):
    query = contextual_query(turn, HISTORY)

    assert is_followup(turn, HISTORY)
    assert query.startswith(turn)
    assert "Export notes as Markdown" in query
    assert "export my notes" in query.lower()
    assert "hi there" not in query.lower()


@pytest.mark.parametrize(
    "turn",
    [
        "How do I cancel my subscription?",
        "Is it possible to change my password?",
        "Refund policy?",
        "Thanks!",
        "Hello",
        "Danke schön!",
    ],
)
def test_a_turn_that_stands_alone_is_left_as_it_is(turn):
    assert not is_followup(turn, HISTORY)
    assert contextual_query(turn, HISTORY) == turn


def test_without_history_nothing_is_a_follow_up():
    assert contextual_query("and as PDF?", []) == "and as PDF?"
    assert contextual_query("  how do I   reset my password ", [Turn("customer", "hello")]) == (
        "how do I reset my password"
    )


def test_a_greeting_never_becomes_the_topic():
    history = [Turn("customer", "Good morning!"), Turn("assistant", "Good morning, what can I do for you?")]

    assert contextual_query("and what does it cost?", history) == "and what does it cost?"


def test_a_new_device_replaces_the_old_one_in_the_carried_question():
    query = contextual_query("and on Android?", HISTORY)

    assert "export my notes" in query
    assert "iphone" not in query.lower()
    assert followup("and on Android?", HISTORY).reasons == ("elliptic opener",)


def test_a_new_question_after_a_follow_up_opens_a_new_topic():
    history = [
        *HISTORY,
        Turn("customer", "and as PDF?"),
        Turn("customer", "How do I invite a colleague to a notebook?"),
    ]

    query = contextual_query("does it work for guests too?", history)

    assert "invite a colleague" in query
    assert "export" not in query.lower()


@pytest.mark.parametrize(
    ("turn", "reason"),
    [
        ("Und als PDF?", "elliptic opener"),
        ("Geht das auch offline?", "demonstrative"),
        ("¿Y en Android?", "elliptic opener"),
        ("Et si je le perds ?", "elliptic opener"),
        ("Ça marche aussi sur Mac ?", "pronoun"),
    ],
)
def test_follow_ups_in_german_spanish_and_french(turn, reason):
    verdict = followup(turn, HISTORY)

    assert reason in verdict.reasons
    assert "export my notes" in contextual_query(turn, HISTORY).lower()


def test_a_named_thing_is_what_it_means_next():
    names = ["Ashley Hotel", "Cityroomz"]
    history = [
        Turn("customer", "I need a moderately priced hotel in the north."),
        Turn("assistant", "the ashley hotel in the north is moderately priced. Shall I book it?"),
    ]

    assert contextual_query("Do they have good wifi?", history, names=names) == "Do they have good wifi? Ashley Hotel"
    assert "Ashley" not in contextual_query("What about Cityroomz?", history, names=names)
    assert contextual_query("Is the wifi at Cityroomz fast?", history, names=names) == "Is the wifi at Cityroomz fast?"


def test_entities_are_read_as_conversation_state():
    assert extract_entities("My Pro plan on android won't sync") == {"device": "android", "plan": "pro", "area": "sync"}
    assert extract_entities("Rechnung als PDF auf dem iPad?") == {"device": "ios", "area": "billing"}
    assert extract_entities("free wifi at the a & b guest house", names=["A AND B GUEST HOUSE"]) == {
        "name": "A AND B GUEST HOUSE"
    }
    assert extract_entities("hello") == {}
