"""The local triage provider: seed routing, rule signals, versions, learning from agents, evaluation."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from django.core.management import call_command

from tickets import services
from tickets.ai.rules import CATEGORY_DEPARTMENT
from tickets.ai.triage import cues, decide, language, sentiment
from tickets.ai.triage import local as triage_local
from tickets.ai.triage import model as triage_model
from tickets.ai.triage.seed import OUT_OF_SCOPE, SEED, SENTIMENT_SEED
from tickets.models import Priority, Ticket, TriageModel
from tickets.tests.factories import DepartmentFactory, make_agent, make_ticket


@pytest.fixture(autouse=True)
def _no_model_loaded_yet():
    """Each test reads the active version from its own database, not from a previous test's cache."""
    triage_local.clear_cache()
    yield
    triage_local.clear_cache()


# --- seed data ------------------------------------------------------------------------------------


def test_the_seed_files_hold_distinct_texts_with_labels_the_model_knows():
    assert (len(SEED), len(SENTIMENT_SEED), len(OUT_OF_SCOPE)) == (213, 899, 30)
    assert {category for _, category, _ in SEED} == set(CATEGORY_DEPARTMENT)
    assert {priority for _, _, priority in SEED} == set(Priority.values)
    assert [label for _, label in SENTIMENT_SEED] == ["negative"] * 344 + ["neutral"] * 306 + ["positive"] * 249
    assert set(Ticket.Sentiment.values) == {"negative", "neutral", "positive"}
    texts = [text for text, _, _ in SEED] + [text for text, _ in SENTIMENT_SEED] + list(OUT_OF_SCOPE)
    assert all(text and text == text.strip() for text in texts)
    assert len(set(texts)) == len(texts)


# --- seed model -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "department", "category"),
    [
        ("Hello, I was billed twice for Pro this month. Could one payment be refunded?", "billing", "refund"),
        ("Where can I download last month's invoice with our company address on it?", "billing", "invoice"),
        ("My notes stopped syncing between my laptop and my phone yesterday.", "technical", "sync"),
        ("The desktop app crashes every time I paste an image into a note.", "technical", "app_crash"),
        ("I lost my phone, so I can't get the two-factor code to log in.", "account-security", "two_factor"),
        ("Do you offer an education discount for a class of 25 students?", "sales", "discount"),
    ],
)
def test_the_seed_model_routes_clear_questions(text, department, category):
    result = triage_local.predict(text)

    assert (result.department, result.category) == (department, category)
    assert result.model_version == 0
    assert not result.out_of_scope
    assert result.department_confidence > 0.5


@pytest.mark.django_db
def test_a_question_no_department_handles_is_out_of_scope_and_needs_a_human():
    result = triage_local.predict("What's a good recipe for a chocolate cake with walnuts?")

    assert result.out_of_scope
    assert result.department == ""
    assert result.needs_human
    assert result.needs_human_reason == "Out of scope: no department handles this"


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["hi", "thanks, that worked!", "Hello there, thank you so much!"])
def test_greetings_and_thanks_are_never_out_of_scope(text):
    result = triage_local.predict(text)

    assert not result.out_of_scope
    assert not result.needs_human


@pytest.mark.django_db
def test_a_result_carries_summary_language_and_sentiment():
    result = triage_local.predict(
        "Hi team,\nThanks for the quick reply yesterday. The Android app still says 'Syncing 87%' and never "
        "finishes, so my notes from the laptop are missing. What else can I try?\nBest, Tomás"
    )

    assert result.summary == (
        "The Android app still says 'Syncing 87%' and never finishes, so my notes from the laptop are missing."
    )
    assert len(result.summary) <= decide.SUMMARY_CHARS
    assert result.language == "en"
    assert result.sentiment in {"negative", "neutral", "positive"}
    assert -1.0 <= result.sentiment_score <= 1.0


def test_a_long_summary_is_cut_at_a_word_with_an_ellipsis():
    summary = decide.summarize("word " * 80)

    assert len(summary) <= decide.SUMMARY_CHARS
    assert summary.endswith("word…")


# --- signals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Can I please talk to a human?",
        "I want to speak with a real person, not a bot.",
        "Connect me to an agent now",
        "Let me speak to your manager.",
        "agent please",
        "Ich möchte mit einem Mitarbeiter sprechen.",
        "Quiero hablar con una persona, por favor.",
        "Je voudrais parler à un conseiller.",
        "Posso parlare con un operatore?",
        "Ik wil graag met een medewerker spreken.",
        "Quero falar com um atendente.",
        "Please connect me with your sales team",
        "Can I talk to your billing department?",
    ],
)
def test_asking_for_a_human_is_detected(text):
    assert cues.human_requested(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "No need for a human, the article fixed it. Thanks!",
        "I don't want to talk to an agent, just tell me where the export button is.",
        "Talking to a person is not necessary.",
        "How do I share a notebook with someone on my team?",
        "The chat agent icon overlaps the editor.",
        "No necesito hablar con un agente, gracias.",
        "I need to talk to my team first.",
        "Is the team plan cheaper than Pro?",
    ],
)
def test_mentions_that_are_not_a_request_for_a_human_are_not_detected(text):
    assert cues.human_requested(text) is False


def test_urgency_signals_name_their_family():
    assert cues.urgency_signals("Someone logged into my account from another country!") == {"security"}
    assert cues.urgency_signals("Nimbus is down, nobody in our company can sign in.") == {"outage"}
    assert cues.urgency_signals("I will take this to court and talk to my lawyer.") == {"legal"}
    assert cues.urgency_signals("I didn't authorize this charge on my card.") == {"fraud"}
    assert cues.urgency_signals("How do I export a notebook?") == set()


@pytest.mark.django_db
def test_security_words_raise_priority_and_need_a_human():
    result = triage_local.predict("Someone logged into my account from another country and I can't get back in.")

    assert result.priority in {"high", "urgent"}
    assert "security" in result.signals
    assert result.department == "account-security"
    assert (result.needs_human, result.needs_human_reason) == (
        True,
        "Possible security issue: account access or suspicious activity",
    )


@pytest.mark.django_db
def test_an_outage_raises_priority_and_vip_and_repeated_contact_raise_it_further():
    text = "How do I export my notes to Markdown? Also the service is down for everyone in our office."

    plain = triage_local.predict(text)
    bumped = triage_local.predict(text, customer_messages=4, is_vip=True)

    assert "outage" in plain.signals
    assert plain.priority == "high"
    assert bumped.priority == "urgent"
    assert {"repeated_contact", "vip"} <= set(bumped.signals)


@pytest.mark.django_db
def test_saying_it_is_the_third_time_counts_as_repeated_contact_and_bumps_priority():
    first = triage_local.predict("How do I move a note to another notebook?")
    again = triage_local.predict("This is the third time I'm asking: how do I move a note to another notebook?")

    assert "repeated_contact" not in first.signals
    assert "repeated_contact" in again.signals
    assert decide.PRIORITIES.index(again.priority) == decide.PRIORITIES.index(first.priority) + 1


@pytest.mark.django_db
def test_an_explicit_request_for_a_human_is_reported_with_its_reason():
    result = triage_local.predict("I've tried everything in the help center. Please let me talk to a human.")

    assert "human_requested" in result.signals
    assert (result.needs_human, result.needs_human_reason) == (True, "Customer asked for a human")


def test_sentiment_of_angry_and_happy_text():
    angry_label, angry_score = sentiment.analyse(
        "This is the worst service ever. I am furious and I want my money back!"
    )
    happy_label, happy_score = sentiment.analyse("Thank you so much, that fixed it. Great support!")
    german_label, _ = sentiment.analyse("Das ist eine Frechheit, ich bin wütend!")

    assert angry_label == "negative"
    assert sentiment.is_angry(angry_score)
    assert happy_label == "positive"
    assert happy_score > 0.5
    assert german_label == "negative"


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("Thanks for nothing.", "sarcasm"),
        ("Great, another cancellation. Just great.", "sarcasm"),
        ("So much for next day delivery.", "sarcasm"),
        ("Still waiting for my refund", "complaint"),
        ("They lost my bag on a direct flight", "complaint"),
        ("@QuickShip on hold for 40 minutes 😡", "complaint"),
        ("not bad at all", "praise"),
        ("Can't complain, it all arrived on time 👍", "praise"),
    ],
)
def test_sentiment_cues_name_what_vader_misses(text, family):
    assert cues.sentiment_cues(text)[family] >= 1


def test_a_complaint_word_in_a_hypothetical_question_is_not_a_complaint():
    assert cues.sentiment_cues("What happens if my flight is cancelled?") == {"sarcasm": 0, "complaint": 0, "praise": 0}
    assert cues.sentiment_cue_score("How do I reset my PIN?") == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "What happens if my flight is cancelled?",
        "If my order is late, can I get the delivery fee back?",
        "In case my parcel goes missing, who do I talk to?",
        "Would I get a voucher if the train is cancelled?",
        "@RailCo what if the strike goes ahead on Friday?",
        "Was passiert, wenn mein Zug ausfällt?",
        "¿Qué pasa si mi vuelo se cancela?",
        "Au cas où mon colis est perdu, qui dois-je contacter ?",
    ],
)
def test_a_question_about_a_problem_that_has_not_happened_is_hypothetical(text):
    assert cues.hypothetical_question(text)


@pytest.mark.parametrize(
    "text",
    [
        "My flight was cancelled and nobody told me.",
        "If you cancel my flight again I'm done with you.",
        "Why would I pay for a seat that doesn't recline?",
        "What happens if my flight is cancelled AGAIN?",
        "If my refund is still not here by Monday, what do I do?",
        "I've been on hold for an hour. What if I just cancel?",
        "What happens now?! You lost my bag.",
        "How do I reset my PIN?",
    ],
)
def test_a_complaint_or_a_plain_question_is_not_hypothetical(text):
    assert not cues.hypothetical_question(text)


def test_a_hypothetical_question_damps_only_negativity():
    mild = 1.5 * sentiment.BLEND_NEGATIVE_AT_MOST  # every view says mildly negative
    assert sentiment.blended_label(mild, mild, mild) == "negative"
    assert sentiment.blended_label(mild, mild, mild, hypothetical=True) == "neutral"
    assert sentiment.blended_label(0.6, 0.6, 0.5, hypothetical=True) == "positive"
    assert sentiment.blended_label(-0.9, -0.9, -0.9, hypothetical=True) == "negative"


@pytest.mark.parametrize(
    "text",
    [
        "been waiting 3 weeks for my replacement card",
        "45 minutes in the queue and counting",
        "waited over an hour at the desk",
        "my package is late again",
        "the app crashed again",
        "third week I've emailed about this, called twice too",
        "the shop doesn't answer the phone",
        "they never call back",
    ],
)
def test_complaints_about_the_service_are_complaint_cues(text):
    assert cues.sentiment_cues(text)["complaint"] >= 1


@pytest.mark.parametrize(
    "text",
    [
        "How long is the wait for a new card, 3 days?",
        "Can you send the code again?",
        "Please call me back tomorrow after 5.",
        "Delivery takes 2 days, right?",
    ],
)
def test_plain_questions_about_waits_and_calls_are_not_complaints(text):
    assert cues.sentiment_cues(text)["complaint"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "pretty fed up with chasing my refund",
        "had enough of this app",
        "sick of the Monday delays",
        "the export keeps timing out",
        "@NimbusNotes app keeps logging me out",
        "the lift at platform 2 is out of order",
        "late for the third day running",
        "how am I supposed to get to work now",
        "took a day off for nothing",
    ],
)
def test_plain_words_of_a_public_complaint_are_complaint_cues(text):
    assert cues.sentiment_cues(text)["complaint"] >= 1


@pytest.mark.parametrize(
    "text",
    [
        "Voted best regional airline three years in a row!",
        "Does the app log me out after a week?",
        "How am I able to add a second card?",
        "Is the shop open on Sunday?",
    ],
)
def test_praise_and_plain_questions_are_not_public_complaint_cues(text):
    assert cues.sentiment_cues(text)["complaint"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "@CloudAir why is my bag in Denver",
        "why can't I log in on my phone since Friday?",
        "Why does it take a week to send a card?",
        "and why was nobody at the desk",
    ],
)
def test_a_why_question_in_public_is_a_complaint_cue(text):
    assert cues.sentiment_cues(text)["complaint"] >= 1


@pytest.mark.parametrize(
    "text",
    [
        "Why not try the new notes app? It's free.",
        "This is why I always fly with you!",
        "That's why we switched to your bank, great rates",
    ],
)
def test_why_not_and_that_is_why_are_not_complaint_cues(text):
    assert cues.sentiment_cues(text)["complaint"] == 0


def test_sarcasm_outweighs_the_praise_words_it_uses():
    assert sentiment.score("Thanks for nothing") > 0  # VADER reads it as thanks
    assert cues.sentiment_cue_score("Thanks for nothing") < -0.5
    assert (
        sentiment.blended_label(
            sentiment.score("Thanks for nothing"), 0.0, cues.sentiment_cue_score("Thanks for nothing")
        )
        == "negative"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thanks for nothing. My refund never arrived.", "negative"),
        ("Love waiting on hold for two hours. Really.", "negative"),
        ("my flight was delayed 3 hours and nobody told us anything", "negative"),
        ("How do I change the name on my booking?", "neutral"),
        ("Do you deliver to Ireland, and how long does it take?", "neutral"),
        ("Thank you so much, the parcel arrived early!", "positive"),
    ],
)
def test_the_seed_model_reads_how_the_customer_feels(text, expected):
    assert triage_local.predict(text).sentiment == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    ["The replacement charger still hasn't arrived.", "Bit disappointed the lounge was closed again."],
)
def test_a_mild_complaint_is_negative(text):
    assert triage_local.predict(text).sentiment == "negative"


def test_sentiment_only_rows_do_not_move_the_other_heads_scaling_and_the_sentiment_head_has_its_own_penalty():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(12, 4)).astype(np.float32)
    category = ["a", "b"] * 3 + [""] * 6
    mood = [""] * 6 + ["negative", "neutral", "positive"] * 2
    targets = {"category": category, "sentiment": mood}
    both = triage_model.fit_model(vectors, targets, scale_fields=["category"], head_l2={"sentiment": 0.3})
    alone = triage_model.fit_model(vectors[:6], {"category": category[:6]})
    assert np.allclose(both.mean, alone.mean)
    assert np.allclose(both.scale, alone.scale)
    assert np.allclose(both.heads["category"].weights, alone.heads["category"].weights)
    weak = triage_model.fit_model(vectors, targets, scale_fields=["category"])
    assert np.abs(both.heads["sentiment"].weights).sum() < np.abs(weak.heads["sentiment"].weights).sum()
    assert triage_local.HEAD_L2 == {"sentiment": triage_local.SENTIMENT_L2}


def test_the_sentiment_tuning_splits_the_seed_by_support_domain():
    from tickets.ai.evaluation import sentiment_tuning

    assert sentiment_tuning.domain("My flight was delayed") == "travel"
    assert sentiment_tuning.domain("Where is my parcel?") == "delivery_shop"
    assert sentiment_tuning.domain("The app won't sync") == "bank_telecom_app"
    assert sentiment_tuning.domain("Thanks for your help") == "other"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    ["What happens if my flight is cancelled?", "If my order is late, can I get the delivery fee back?"],
)
def test_a_question_about_a_problem_that_has_not_happened_is_not_negative(text):
    assert triage_local.predict(text).sentiment == "neutral"


@pytest.mark.django_db
def test_negated_praise_is_not_negative():
    assert triage_local.predict("not bad at all").sentiment != "negative"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("My notes are not syncing to my phone since yesterday.", "en"),
        ("Ich kann mich seit gestern nicht mehr anmelden.", "de"),
        ("No puedo iniciar sesión en mi cuenta desde ayer.", "es"),
        ("Danke", "de"),
        ("ok", ""),
    ],
)
def test_language_of_short_and_long_texts(text, code):
    assert language.detect(text) == code


# --- versions -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_training_creates_the_next_version_active_and_deactivates_the_old_one():
    first = triage_local.train()
    second = triage_local.train(include_corrections=False)

    first.refresh_from_db()
    assert (first.version, first.is_active) == (1, False)
    assert (second.version, second.is_active) == (2, True)
    assert TriageModel.objects.filter(is_active=True).count() == 1
    assert second.trained_on["seed"] == len(SEED)
    assert second.trained_on["corrections"] == 0
    assert set(second.metrics) >= {"category", "department", "priority", "out_of_scope"}
    assert triage_local.active_version() == 2
    assert triage_local.predict("Where is my invoice?").model_version == 2


@pytest.mark.django_db
def test_weights_round_trip_without_pickle():
    row = triage_local.train()
    stored = TriageModel.objects.get(pk=row.pk)
    vectors = np.random.default_rng(0).normal(size=(3, 384)).astype(np.float32)

    with np.load(io.BytesIO(bytes(stored.weights)), allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)
    loaded = triage_model.model_from_bytes(stored.weights, stored.labels, version=stored.version)
    cached = triage_local.current_model()

    assert cached.version == loaded.version == row.version
    for name in triage_local.HEADS:
        assert loaded.heads[name].labels == cached.heads[name].labels
        np.testing.assert_allclose(loaded.proba(vectors)[name], cached.proba(vectors)[name], rtol=1e-6)


@pytest.mark.django_db
def test_a_stored_model_is_picked_up_by_another_process_after_the_cache_is_cleared():
    row = triage_local.train()
    triage_local.clear_cache()

    assert triage_local.predict("I need a quote for 30 seats").model_version == row.version


# --- learning from agents -------------------------------------------------------------------------

AUDIT_TEXT = "Our auditors need a monthly report of which employees opened which shared notebooks."
AUDIT_PARAPHRASE = "Every month our auditors want a report showing which staff opened which shared notebooks."


@pytest.mark.django_db
def test_an_agent_correction_changes_the_next_prediction_after_retraining():
    sales = DepartmentFactory(name="Sales", slug="sales")
    agent = make_agent(sales)
    ticket = make_ticket(subject="Audit report", body=AUDIT_TEXT)
    before = triage_local.predict(AUDIT_TEXT)
    assert (before.department, before.category) != ("sales", "audit_report")

    services.ticket_update_triage(ticket=ticket, actor=agent, department=sales, category="audit_report")
    row = triage_local.train()

    assert row.trained_on["corrections"] == 1
    after = triage_local.predict(AUDIT_TEXT)
    paraphrase = triage_local.predict(AUDIT_PARAPHRASE)
    assert (after.department, after.category, after.model_version) == ("sales", "audit_report", row.version)
    assert (paraphrase.department, paraphrase.category) == ("sales", "audit_report")


@pytest.mark.django_db
def test_changes_made_by_the_ai_are_not_learnt_as_corrections():
    ticket = make_ticket(body=AUDIT_TEXT)

    services.ticket_update_triage(ticket=ticket, actor_kind="ai", category="audit_report", priority="high")

    assert [e for e in triage_local.training_examples() if e.source == "correction"] == []


@pytest.mark.django_db
def test_a_correction_of_a_seed_text_replaces_the_seed_label():
    text, category, _ = SEED[0]
    agent = make_agent()
    ticket = make_ticket(body=text)

    services.ticket_update_triage(ticket=ticket, actor=agent, category="double_charge")

    examples = [e for e in triage_local.training_examples() if e.text == text]
    assert category == "refund"
    assert [(e.source, e.category) for e in examples] == [("seed", ""), ("correction", "double_charge")]
    assert examples[0].department == "billing"


# --- evaluation command ---------------------------------------------------------------------------

_BITEXT_ROWS = [
    *[(f"I want my money back for order {n}", "get_refund", "REFUND") for n in range(8)],
    *[(f"where is the invoice for purchase {n}?", "get_invoice", "INVOICE") for n in range(8)],
    *[(f"please let me talk to a human agent about case {n}", "contact_human_agent", "CONTACT") for n in range(8)],
]


def test_eval_triage_on_a_tiny_bitext_folder_ends_with_one_json_line(tmp_path):
    with (tmp_path / "bitext.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["instruction", "intent", "category", "tags"])
        writer.writerows([(text, intent, category, "BL") for text, intent, category in _BITEXT_ROWS])
    out, err = io.StringIO(), io.StringIO()

    call_command("eval_triage", data=str(tmp_path), cache_dir=str(tmp_path / "cache"), stdout=out, stderr=err)

    figures = json.loads(out.getvalue().strip().splitlines()[-1])
    assert figures["dataset"] == "bitext_customer_support"
    assert figures["train"] + figures["test"] == len(_BITEXT_ROWS)
    assert figures["category"]["accuracy"] == 1.0
    assert figures["escalation_human_requested"]["recall"] == 1.0
    assert "own seeded" in figures["split"]
