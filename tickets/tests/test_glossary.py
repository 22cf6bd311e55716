from __future__ import annotations

import pytest

from tickets.ai.conversation import with_glossary


@pytest.mark.parametrize(
    ("text", "language", "words"),
    [
        ("Hola, olvidé mi contraseña. ¿Cómo la restablezco?", "es", {"password", "forgot", "reset"}),
        ("Je veux télécharger ma facture", "fr", {"download", "invoice"}),
        ("Come posso disdire l'abbonamento?", "it", {"cancel", "subscription"}),
        ("Esqueci a senha da minha conta", "pt", {"forgot", "password", "account"}),
        ("Ich habe mein Passwort vergessen", "de", {"password", "forgot"}),
    ],
)
def test_a_question_in_another_language_also_searches_for_the_articles_english_words(text, language, words):
    expanded = with_glossary(text, language)

    assert expanded.startswith(text)  # the customer's words are kept, first
    assert words <= set(expanded[len(text) :].strip(" ()").split())


def test_english_and_unknown_languages_and_look_alikes_are_left_alone():
    assert with_glossary("How do I reset my password?", "en") == "How do I reset my password?"
    assert with_glossary("Hallo", "xx") == "Hallo"
    # "$" keys are whole words: "contato" (contact) is not "conta" (account)
    assert "account" not in with_glossary("Qual é o contato do suporte?", "pt")
