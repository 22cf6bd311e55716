"""The customer's side in German, Spanish and French: which language a page, a live fragment and an email is
in (``tickets.languages``), the switchers, and the console kept to English and German.

Expected words are written out per language (not looked up through gettext), so a catalogue that is not
loaded, or a page that does not ask for it, fails here.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client
from django.urls import resolve, reverse

from knowledge import services as kb_services
from supportflow.asgi import application
from tickets import realtime, selectors, services
from tickets.consumers import db
from tickets.email import outbound
from tickets.models import Message, Ticket
from tickets.tests.factories import CustomerFactory, make_agent, make_ticket, set_status

START = reverse("chat:start")
ORIGIN = (b"origin", b"http://localhost")

# A few words of each page in each language: (chat start, conversation page, rating prompt, help center).
WORDS = {
    "en": ("Start the conversation", "Your message", "How did we do?", "Search the help center"),
    "de": ("Gespräch beginnen", "Ihre Nachricht", "Wie zufrieden waren Sie mit uns?", "Im Hilfe-Center suchen"),
    "es": ("Iniciar la conversación", "Su mensaje", "¿Qué tal lo hemos hecho?", "Buscar en el centro de ayuda"),
    "fr": ("Commencer la conversation", "Votre message", "Comment évaluez-vous notre aide\u00a0?", "Rechercher dans le centre d’aide"),
}  # fmt: skip
BROWSERS = {"de": "de-DE,de;q=0.9,en;q=0.5", "es": "es-MX,es;q=0.9", "fr": "fr-CH, fr;q=0.9, en;q=0.8"}


def link(ticket: Ticket, name: str = "conversation") -> str:
    return reverse(f"chat:{name}", args=[selectors.ticket_customer_token(ticket=ticket)])


def opens(url: str, name: str) -> Ticket:
    """The conversation a link of ours opens. Links carry a signed token with a timestamp, so one made a
    second later differs in text (the page's and the test's, under load) though it opens the same ticket."""
    match = resolve(url)
    assert match.view_name == f"chat:{name}", match.view_name
    return selectors.ticket_get_for_customer(token=match.kwargs["token"])


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def assert_in_language(html: str, language: str, words: tuple[str, ...]) -> None:
    assert f'<html lang="{language}">' in html
    for word in words:
        assert word in html, (language, word)
    if language != "en":
        english = [w for w in WORDS["en"] if w in html]
        assert english == [], f"English left on a {language} page: {english}"


@pytest.fixture
def article(db):
    return kb_services.article_save(
        title="Passwort zurücksetzen", slug="passwort", status="published", language="de",
        body="## Schritte\n\nÖffnen Sie die Anmeldeseite.", reindex="none",
    )  # fmt: skip


# --- from the browser's Accept-Language -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["de", "es", "fr"])
def test_the_customer_pages_follow_the_browser(client, language, article):
    browser = {"HTTP_ACCEPT_LANGUAGE": BROWSERS[language]}
    start, conversation, rating, help_center = WORDS[language]
    ticket = make_ticket(body="Hallo")  # a conversation of no detected language yet
    resolved = set_status(make_ticket(body="Hola"), "resolved")

    start_page = client.get(START, **browser)
    assert_in_language(page(start_page), language, (start,))
    assert start_page["Content-Language"] == language
    assert_in_language(page(client.get(link(ticket), **browser)), language, (conversation,))
    assert_in_language(page(client.get(link(resolved), **browser)), language, (rating,))
    assert_in_language(page(client.get(reverse("help:index"), **browser)), language, (help_center,))
    article_page = page(client.get(reverse("help:article", args=["passwort"]), **browser))
    assert_in_language(article_page, language, ())
    assert '<article class="help-article" lang="de">' in article_page  # the article keeps its own language


@pytest.mark.django_db
def test_a_browser_asking_for_none_of_ours_gets_english(client):
    html = page(client.get(START, HTTP_ACCEPT_LANGUAGE="ja-JP,ja;q=0.9,it;q=0.5"))
    assert_in_language(html, "en", (WORDS["en"][0],))


# --- from the conversation ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["de", "es", "fr"])
def test_a_conversation_speaks_its_detected_language_whatever_the_browser(client, language):
    ticket = set_status(make_ticket(body="…"), "resolved")
    services.ticket_update_triage(ticket=ticket, actor_kind="ai", language=language)

    html = page(client.get(link(ticket), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9"))

    assert_in_language(html, language, (WORDS[language][2],))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("detected", "page_language", "chosen", "browser", "expected"),
    [
        ("it", "fr", False, "de", "fr"),  # Italian is not ours: the page language it started with
        ("it", "", False, "es", "es"),  # nor that: this request's browser
        ("de", "fr", True, "es", "fr"),  # picked with the switcher: wins over the detected language
        ("de", "fr", False, "es", "de"),  # the browser's at the start: loses to the detected language
        ("", "", False, "", "en"),
    ],
)
def test_which_language_wins(client, detected, page_language, chosen, browser, expected):
    ticket = make_ticket(body="Ciao")
    Ticket.objects.filter(pk=ticket.pk).update(language=detected, ui_language=page_language, ui_language_chosen=chosen)

    html = page(client.get(link(ticket), HTTP_ACCEPT_LANGUAGE=browser))

    assert_in_language(html, expected, (WORDS[expected][1],))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "when", "limit"),
    [
        ("en", "March 5, 2:30 p.m.", "at most 10,000 characters; this one has 10,001."),
        ("de", "5. März, 14:30", "höchstens 10.000 Zeichen lang sein; diese hat 10.001."),
        ("es", "5 de marzo, 14:30", "como máximo 10\u00a0000 caracteres; este tiene 10\u00a0001."),
        ("fr", "5 mars à 14:30", "au maximum 10\u00a0000 caractères\u00a0; celui-ci en a 10\u00a0001."),
    ],
)
def test_dates_and_numbers_are_written_the_languages_way(client, language, when, limit):
    ticket = make_ticket(body="…")
    Message.objects.filter(ticket=ticket).update(created_at=dt.datetime(2025, 3, 5, 14, 30, tzinfo=dt.UTC))
    services.ticket_update_triage(ticket=ticket, actor_kind="ai", language=language)

    html = page(client.get(link(ticket)))
    refused = client.post(link(ticket, "send"), {"body": "x" * 10_001}, HTTP_HX_REQUEST="true")

    assert f">{when}</time>" in html
    assert refused.status_code == 400
    assert limit in refused.content.decode()


# --- the switchers ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_switcher_on_the_help_center_sets_the_language_for_the_pages_and_the_next_conversation(client):
    german_browser = {"HTTP_ACCEPT_LANGUAGE": BROWSERS["de"]}
    help_html = page(client.get(reverse("help:index"), **german_browser))
    assert 'action="/i18n/setlang/"' in help_html
    assert 'value="fr" lang="fr"' in help_html

    switched = client.post("/i18n/setlang/", {"language": "fr", "next": "/help/?q=sync"}, **german_browser)

    assert (switched.status_code, switched["Location"]) == (302, "/help/?q=sync")
    assert_in_language(page(client.get(reverse("help:index"), **german_browser)), "fr", (WORDS["fr"][3],))
    client.post(START, {"name": "Chloé", "body": "Ma synchro est bloquée"}, **german_browser)
    ticket = Ticket.objects.get()
    assert (ticket.ui_language, ticket.ui_language_chosen) == ("fr", True)


@pytest.mark.django_db
def test_a_conversation_started_without_a_choice_remembers_the_browser_language(client):
    client.post(START, {"name": "Lucía", "body": "Mi sincronización está parada"}, HTTP_ACCEPT_LANGUAGE=BROWSERS["es"])
    ticket = Ticket.objects.get()
    assert (ticket.ui_language, ticket.ui_language_chosen) == ("es", False)


@pytest.mark.django_db
def test_the_switcher_on_the_conversation_page_keeps_the_choice_on_the_conversation(client):
    ticket = make_ticket(body="Hallo")
    services.ticket_update_triage(ticket=ticket, actor_kind="ai", language="de")
    html = page(client.get(link(ticket)))
    action = re.search(r'action="(/chat/c/[^"/]+/language/)"', html)
    assert action is not None
    assert opens(action.group(1), "language") == ticket

    response = client.post(link(ticket, "language"), {"language": "es"})

    assert response.status_code == 302
    assert opens(response["Location"], "conversation") == ticket
    assert response.cookies["django_language"].value == "es"
    ticket.refresh_from_db()
    assert (ticket.language, ticket.ui_language, ticket.ui_language_chosen) == ("de", "es", True)
    assert_in_language(page(Client().get(link(ticket))), "es", (WORDS["es"][1],))  # another device too


@pytest.mark.django_db
def test_a_bad_language_choice_is_refused_and_changes_nothing(client):
    ticket = make_ticket(body="Hallo")

    response = client.post(link(ticket, "language"), {"language": "xx"}, HTTP_ACCEPT_LANGUAGE=BROWSERS["de"])

    assert response.status_code == 400
    assert "Wählen Sie eine der angebotenen Sprachen." in response.content.decode()
    ticket.refresh_from_db()
    assert (ticket.ui_language, ticket.ui_language_chosen) == ("", False)
    assert "django_language" not in response.cookies


@pytest.mark.django_db
def test_the_language_switch_needs_the_csrf_token():
    ticket = make_ticket(body="Hallo")
    client = Client(enforce_csrf_checks=True)

    assert client.post(link(ticket, "language"), {"language": "fr"}).status_code == 403
    assert client.post("/i18n/setlang/", {"language": "fr", "next": "/help/"}).status_code == 403
    ticket.refresh_from_db()
    assert ticket.ui_language_chosen is False


# --- errors, the rating and the console ----------------------------------------------------------------


@pytest.mark.django_db
def test_refusals_and_the_rating_speak_the_conversations_language(client):
    ticket = set_status(make_ticket(body="Bonjour"), "resolved")
    services.ticket_update_triage(ticket=ticket, actor_kind="ai", language="fr")
    htmx = {"HTTP_HX_REQUEST": "true"}

    bad = client.post(link(ticket, "rate"), {"score": "9"}, **htmx)
    rated = client.post(link(ticket, "rate"), {"score": "4"}, **htmx)
    no_body = client.post(link(ticket, "send"), {"body": ""}, **htmx)

    assert bad.status_code == 400
    assert "Choisissez une note de 1 à 5." in bad.content.decode()
    assert "Merci\u00a0! Vous avez donné la note de 4 sur 5 à cette conversation." in page(rated)
    assert no_body.status_code == 400
    assert "Écrivez un message avant de l’envoyer." in no_body.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(("browser", "expected"), [("de-DE,de;q=0.9", "de"), ("es-ES,es;q=0.9", "en"), ("", "en")])
def test_the_console_is_english_or_german_only(client, browser, expected):
    response = client.get(reverse("admin:login"), HTTP_ACCEPT_LANGUAGE=browser)

    assert response.status_code == 200
    assert response["Content-Language"] == expected
    assert f'lang="{expected}"' in response.content.decode()


# --- emails ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_email_to_a_german_customer_is_in_german(smtp_server, email_settings, department):
    ticket = services.ticket_create(
        customer=CustomerFactory(email="hannah@example.com"), subject="Rechnung doppelt",
        body="Guten Tag, ich wurde zweimal belastet.", channel="email", department=department,
    )  # fmt: skip
    services.ticket_update_triage(ticket=ticket, actor_kind="ai", language="de")
    reply = services.message_create(
        ticket=ticket, author_kind="agent", author_user=make_agent(department), body="Wir erstatten den Betrag."
    )

    assert outbound.email_reply_send(message_id=reply.pk) == "sent"

    [mail] = smtp_server.wait_for(1)
    body = mail.get_content()
    assert f"Antworten Sie auf diese E-Mail, um das Gespräch {ticket.reference} fortzusetzen." in body
    assert "Reply to this email" not in body
    assert mail["Subject"] == f"Re: Rechnung doppelt [{ticket.reference}]"


@pytest.mark.django_db
def test_an_email_to_a_customer_of_no_known_language_is_in_english(smtp_server, email_settings, department):
    ticket = services.ticket_create(
        customer=CustomerFactory(email="ana@example.com"), subject="Sync", body="?", channel="email",
        department=department,
    )  # fmt: skip
    reply = services.message_create(ticket=ticket, author_kind="agent", author_user=make_agent(department), body="Hi")

    outbound.email_reply_send(message_id=reply.pk)

    [mail] = smtp_server.wait_for(1)
    assert f"Reply to this email to continue {ticket.reference}." in mail.get_content()


# --- what a worker and the sockets send -------------------------------------------------------------------------


def _socket(path: str, *headers) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN, *headers])
    communicator.scope["client"] = ("10.0.0.7", 5000)
    return communicator


async def _until(communicator, pattern: str, frames: int = 10) -> str:
    for _ in range(frames):
        frame = await communicator.receive_from(timeout=3)
        if re.search(pattern, frame):
            return frame
    raise AssertionError(f"no frame matching {pattern!r}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
def test_what_a_worker_pushes_to_a_german_customer_is_german_and_english_to_the_agents(department):
    ticket = make_ticket(department=department, body="Meine Synchronisierung hängt")
    services.ticket_update_triage(ticket=ticket, actor_kind="ai", language="de")
    agent = make_agent(department)
    agent.first_name = "Dana"
    agent.save()
    console = Client()
    console.force_login(agent)
    session = (b"cookie", f"sessionid={console.cookies['sessionid'].value}".encode())

    async def scenario():
        customer = _socket(f"/ws/chat/{selectors.ticket_customer_token(ticket=ticket)}/")
        staff = _socket(f"/ws/agent/tickets/{ticket.pk}/", session)
        assert (await customer.connect(timeout=5))[0]
        assert (await staff.connect(timeout=5))[0]
        assert "Dana ist dem Gespräch beigetreten" in await _until(customer, "presence")

        def worker_side():  # a Celery task's plain sync code: no request, no active language of its own
            realtime.ai_status(ticket.pk, working=True)
            services.message_create(
                ticket=ticket, author_kind="ai", body="Öffnen Sie **Einstellungen**", ai_confidence=0.9
            )
            with transaction.atomic():
                services.hand_over(ticket=Ticket.objects.get(pk=ticket.pk), reason="test", actor_kind="ai")

        await db(worker_side)()
        assert "Der Assistent bereitet eine Antwort vor…" in await _until(customer, "ai-status")
        answer = await _until(customer, 'data-seq="2"')
        assert ">Assistent<" in answer
        assert ">KI<" in answer
        assert "Hat das Ihre Frage beantwortet?" in answer
        handover = await _until(customer, 'data-seq="3"')
        assert f"Ich habe Ihr Anliegen an unser Team „{department.name}“ weitergegeben" in handover
        status = await _until(customer, 'id="chat-status"')
        assert "Eine Person aus unserem Team kümmert sich um dieses Gespräch" in status

        assert "The assistant is preparing an answer…" in await _until(staff, "ai-status")
        assert ">Assistant<" in await _until(staff, 'data-seq="2"')

        await customer.send_to(text_data="{not json")
        assert "Die Anfrage konnte nicht gelesen werden" in await _until(customer, "chat-error")
        await customer.disconnect()
        await staff.disconnect()

    async_to_sync(scenario)()
    assert ticket.messages.get(seq=3).body.startswith("Ich habe Ihr Anliegen")  # stored as the customer read it


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
def test_a_customer_socket_without_a_conversation_language_speaks_the_browsers():
    ticket = make_ticket(body="Hola")

    async def scenario():
        ws = _socket(f"/ws/chat/{selectors.ticket_customer_token(ticket=ticket)}/", (b"accept-language", b"es-ES,es"))
        assert (await ws.connect(timeout=5))[0]
        await ws.send_json_to({"type": "message", "body": "   ", "client_id": "c1"})
        assert "Un mensaje no puede estar vacío." in await _until(ws, "chat-error")
        await ws.send_json_to({"type": "resync", "after": 0})
        assert "Mi pregunta está resuelta" in await _until(ws, "chat-status")
        await ws.disconnect()

    async_to_sync(scenario)()
    assert ticket.messages.count() == 1


@pytest.mark.django_db
def test_the_handover_notice_is_stored_in_the_conversations_language(department):
    ticket = make_ticket(department=department, body="Necesito ayuda")
    services.ticket_update_triage(ticket=ticket, actor_kind="ai", language="es")

    services.ticket_request_human(ticket=ticket)

    notice = ticket.messages.get(author_kind="system")
    ticket.refresh_from_db()
    promised = ticket.reply_promised_at  # when a person will reply (tickets.reply_estimates), said in Spanish too
    day = "hoy" if promised.date() == ticket.escalated_at.date() else "mañana"
    assert notice.body == (
        f"He pasado su consulta a nuestro equipo de {department.name}; una persona le responderá aquí "
        f"{day} hacia las {promised:%H:%M} UTC."
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "name", "expected"),
    [
        ("de", "Hannah Becker", "Hallo Hannah, danke für Ihre Nachricht."),
        ("fr", "", "Bonjour, merci de nous avoir écrit."),
        ("it", "Marco Rossi", "Hi Marco, thanks for getting in touch."),  # not ours: English
    ],
)
def test_the_holding_draft_an_agent_may_send_is_in_the_conversations_language(language, name, expected):
    from tickets.ai.reply import holding_draft

    ticket = make_ticket(customer=CustomerFactory(name=name), body="…")
    ticket = services.ticket_update_triage(ticket=ticket, actor_kind="ai", language=language)

    assert holding_draft(ticket).startswith(expected)
