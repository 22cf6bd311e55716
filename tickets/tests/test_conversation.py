"""conversation.read: the act of a customer message, in English, German, Spanish and French."""

from __future__ import annotations

import pytest

from tickets.ai.conversation import Act, read


@pytest.mark.parametrize(
    ("text", "act"),
    [
        ("hi", Act.GREETING),
        ("Hello there!", Act.GREETING),
        ("hello?", Act.GREETING),
        ("Guten Morgen", Act.GREETING),
        ("hola", Act.GREETING),
        ("Bonjour !", Act.GREETING),
        ("thanks!", Act.THANKS),
        ("Vielen Dank!", Act.THANKS),
        ("muchas gracias", Act.THANKS),
        ("merci beaucoup", Act.THANKS),
        ("Thank you so much, have a nice day!", Act.GOODBYE),
        ("Danke schön, tschüss", Act.GOODBYE),
        ("are you a bot?", Act.SMALL_TALK),
        ("it doesn't work", Act.VAGUE),
        ("Es funktioniert nicht", Act.VAGUE),
        ("help!!", Act.VAGUE),
        ("How do I export my notes?", Act.QUESTION),
        ("Wie kann ich meine Rechnungen herunterladen?", Act.QUESTION),
        ("¿Cómo restablezco mi contraseña?", Act.QUESTION),
    ],
)
def test_the_act_of_a_message(text, act):
    assert read(text).act == act


def test_a_greeting_with_a_question_is_the_question_without_the_greeting():
    reading = read("Hey! How do I import my notebooks from Evernote?")

    assert reading.act == Act.QUESTION
    assert reading.text == "How do I import my notebooks from Evernote?"


def test_thanks_with_a_new_question_is_the_question():
    reading = read("Thanks! One more thing: how do I change the email address on my account?")

    assert reading.act == Act.QUESTION


def test_still_not_working_after_an_answer_is_feedback_on_it_and_vague_before_any():
    assert read("still not working", answered_before=True).act == Act.NEGATIVE_FEEDBACK
    assert read("still not working").act == Act.VAGUE


def test_it_works_now_after_an_answer_is_thanks():
    assert read("it works now", answered_before=True).act == Act.THANKS


@pytest.mark.parametrize(
    "text", ["Hallo, ich habe ein Problem", "Hola, tengo un problema", "Bonjour, j'ai un problème"]
)
def test_a_problem_without_a_topic_is_vague_in_other_languages_too(text):
    assert read(text).act == Act.VAGUE
