"""Extractive answers quote whole units of an article, in one language: lists whole and numbered as
written, tables whole or only pointed to, no cross-reference lines; the frame speaks the quoted
article's language. Articles are written here."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.utils.safestring import mark_safe

from knowledge import embeddings
from knowledge import services as kb_services
from knowledge.selectors import Hit
from tickets.ai import answer as answering
from tickets.ai.compose import MAX_ANSWER_CHARS, compose


def qvec(text: str) -> np.ndarray:
    return np.asarray(embeddings.embed_query(text), dtype=np.float32)


STEPS = """Exports keep your notes and attachments.

## Export a notebook

To export a notebook:

1. Open the notebook in the web app.
2. Choose **⋯ → Export**.
3. Pick **Markdown (.zip)** as the format.
4. Click **Export** and wait for the download to start.
5. Unzip the file: each note is one .md file, attachments are in an assets folder.

## Storage limits

Free accounts store 2 GB. Pro accounts store 100 GB.
"""


def test_a_step_list_is_quoted_whole_with_its_lead_in_and_numbers():
    extract = compose(qvec("which format do I pick when exporting a notebook?"), STEPS)

    assert extract is not None
    numbers = re.findall(r"^(\d+)\. ", extract.text, flags=re.MULTILINE)
    assert numbers == ["1", "2", "3", "4", "5"]
    assert extract.text.startswith("To export a notebook:")
    assert extract.heading_path == "Export a notebook"
    assert "2 GB" not in extract.text  # another section


SHORT_TABLE = """## Plans

Storage by plan:

| plan | storage |
|---|---|
| Free | 2 GB |
| Pro | 100 GB |
"""


def test_a_short_table_is_quoted_whole():
    extract = compose(qvec("how much storage does the Pro plan have?"), SHORT_TABLE)

    assert "| plan | storage |\n|---|---|\n| Free | 2 GB |\n| Pro | 100 GB |" in extract.text
    assert extract.omitted == ""


def test_a_long_table_is_not_quoted_but_pointed_to():
    rows = "\n".join(
        f"| Region {i} | data centre number {i} in a city far away | {i * 10} ms latency |" for i in range(20)
    )
    body = f"## Data regions\n\nWhere your data is stored depends on the region you choose.\n\n| region | site | latency |\n|---|---|---|\n{rows}\n"

    extract = compose(qvec("which data centre serves region 7?"), body)

    assert "|" not in extract.text
    assert extract.omitted == "table"


CROSS_REFERENCES = """## Reset your password

Open the sign-in page and click **Forgot password?**. We email you a link that works for 60 minutes. \
For passkeys, see [Signing in with passkeys](/help/articles/sign-in-with-passkeys/).

Weitere Hilfe finden Sie im englischen Artikel [How to reset your password](/help/articles/reset-your-password/).
"""


def test_cross_reference_lines_are_never_quoted():
    extract = compose(qvec("how long does the password reset link work?"), CROSS_REFERENCES)

    assert "60 minutes" in extract.text
    assert "/help/articles/" not in extract.text
    assert "Weitere Hilfe" not in extract.text
    assert "passkeys" not in extract.text


def test_the_section_that_answers_is_preferred_over_the_retrieved_passage():
    body = (
        "## Billing\n\nInvoices are emailed on the first day of each month.\n\n"
        "## Deleting your account\n\nGo to Account Center → Delete account and confirm with your password. "
        "Deleted accounts cannot be restored after 30 days.\n"
    )
    first_section = (0, body.index("## Deleting"))

    extract = compose(qvec("how do I delete my account?"), body, passage=first_section)

    assert extract.heading_path == "Deleting your account"
    assert "Invoices" not in extract.text


def test_a_long_article_is_cut_only_between_units():
    paragraphs = [f"Paragraph {i} explains sync setting number {i} in detail. " * 6 for i in range(12)]
    body = "## Sync settings\n\n" + "\n\n".join(p.strip() for p in paragraphs) + "\n"

    extract = compose(qvec("what does sync setting number 5 do?"), body)

    assert len(extract.text) <= MAX_ANSWER_CHARS
    quoted = extract.text.split("\n\n")
    assert all(p in [x.strip() for x in paragraphs] for p in quoted)
    assert any("number 5" in p for p in quoted)


GERMAN = """## Passwort zurücksetzen

1. Öffnen Sie die Anmeldeseite und klicken Sie auf **Passwort vergessen?**.
2. Geben Sie Ihre E-Mail-Adresse ein.
3. Öffnen Sie den Link in der E-Mail und wählen Sie ein neues Passwort.

Weitere Hilfe finden Sie im englischen Artikel [How to reset your password](/help/articles/reset-your-password/).
"""

ENGLISH = """## Reset your password

1. Open the sign-in page and click **Forgot password?**.
2. Enter your email address.
3. Open the link in the email and choose a new password.
"""


def publish(title: str, slug: str, body: str, language: str = "en"):
    return kb_services.article_save(
        title=title, slug=slug, body=body, language=language, status="published", reindex="now"
    )


@pytest.fixture
def twins(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        de = publish("Passwort zurücksetzen", "passwort", GERMAN, "de")
        en = publish("Reset your password", "reset-password", ENGLISH)
    return {"de": de, "en": en}


ENGLISH_FRAME = ("Here is what our help article", "If this does not solve it", "See also")


def test_german_question_gets_a_german_answer_in_a_german_frame(twins):
    question = "Wie kann ich mein Passwort zurücksetzen?"

    passages = answering.retrieve(question, language="de")
    answer = answering.answer_local(question, passages, language="de")

    assert passages[0].hit.article_id == twins["de"].pk
    assert answer.language == "de"
    assert answer.body.startswith("Das steht dazu in unserem Hilfeartikel „Passwort zurücksetzen“:")
    assert "Wenn das nicht hilft" in answer.body
    assert "1. Öffnen Sie die Anmeldeseite" in answer.body
    assert "3. Öffnen Sie den Link" in answer.body
    assert not any(phrase in answer.body for phrase in ENGLISH_FRAME)
    assert "Weitere Hilfe" not in answer.body
    assert [c["article_id"] for c in answer.citations] == [twins["de"].pk]  # no English "see also"


def test_english_question_with_only_a_german_article_is_answered_in_german_only(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        de = publish("Passwort zurücksetzen", "passwort", GERMAN, "de")
    question = "How do I reset my password?"

    answer = answering.answer_local(question, answering.retrieve(question, language="en"), language="en")

    assert answer.citations[0]["article_id"] == de.pk
    assert answer.language == "de"
    assert answer.body.startswith("Das steht dazu in unserem Hilfeartikel")
    assert not any(phrase in answer.body for phrase in ENGLISH_FRAME)


def _hit(article_id: int, language: str, similarity: float) -> Hit:
    return Hit(
        chunk_id=article_id, article_id=article_id, title=f"a{article_id}", slug=f"a{article_id}", heading_path="",
        text="text", char_start=0, char_end=4, score=1.0, vector_rank=1, fts_rank=None,
        vector_similarity=similarity, snippet=mark_safe(""), language=language,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("german_similarity", "first"),
    [(0.77, 2), (0.70, 1)],  # within LANGUAGE_MARGIN (0.05) of the English 0.80 → German first; else not
)
def test_retrieval_prefers_the_customers_language_when_the_score_is_close(monkeypatch, german_similarity, first):
    monkeypatch.setattr(
        answering, "kb_search", lambda *a, **kw: [_hit(1, "en", 0.80), _hit(2, "de", german_similarity)]
    )

    passages = answering.retrieve("Passwort vergessen", language="de")

    assert passages[0].hit.article_id == first
    assert [p.n for p in passages] == [1, 2]


def test_pieces_of_a_cut_table_or_list_are_never_quoted():
    passage = "| Pro | 100 GB |\n| Teams | 1 TB |\n\n3. Click **Save**.\n4. Reload the page.\n\nStorage is counted per account."

    extract = compose(qvec("how much storage do Teams get?"), passage)

    assert "|" not in extract.text
    assert "3. Click" not in extract.text
    assert extract.text == "Storage is counted per account."


LEAD_AND_STEPS = """If you've forgotten your password, you can set a new one in a few minutes.

## Reset a forgotten password

1. Go to the sign-in page and click **Forgot password?**
2. Enter your account email and click **Send reset link**.
3. Open the email and click **Choose a new password**.
"""


@pytest.mark.django_db
def test_an_opening_line_that_only_promises_the_answer_brings_the_section_that_gives_it(
    django_capture_on_commit_callbacks,
):
    from knowledge.models import Chunk

    with django_capture_on_commit_callbacks(execute=True):
        publish("How to reset your password", "reset-your-password", LEAD_AND_STEPS)
    Chunk.objects.update(injection_flagged=False)  # what the guard's scan stores for clean passages
    question = "How do I reset my password?"
    passages = answering.retrieve(question)
    assert passages[0].hit.heading_path == ""  # the opening line is what retrieval finds first

    answer = answering.answer_local(question, passages)

    assert "set a new one in a few minutes" in answer.body
    assert "**Reset a forgotten password**" in answer.body
    assert "1. Go to the sign-in page" in answer.body
    assert "3. Open the email" in answer.body


@pytest.mark.django_db
def test_a_following_section_the_guard_has_not_cleared_is_not_quoted(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        publish("How to reset your password", "reset-your-password", LEAD_AND_STEPS)
    question = "How do I reset my password?"
    answer = answering.answer_local(question, answering.retrieve(question))  # nothing scanned yet
    assert "Send reset link" not in answer.body
