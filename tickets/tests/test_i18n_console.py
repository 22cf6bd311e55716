"""The agent console and the manager pages in German: the catalogue complete for them, no word left outside a
translation tag in their templates, the pages in German from the browser or the switcher, and what is pushed
live to agents in each agent's language (rendered once per console language, not once per socket)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import polib
import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from supportflow import i18n
from supportflow.asgi import application
from tickets import realtime, roles, services
from tickets.consumers import db
from tickets.tests.factories import make_agent, make_staff, make_ticket
from tickets.tests.test_i18n_catalogues import ROOT, extracted, literal_text  # noqa: F401 — extracted: a fixture


@pytest.fixture(autouse=True)
def _no_language_left_active():
    """A German request leaves German active in this thread (LocaleMiddleware activates, nothing deactivates
    in the test client): later tests would read German errors."""
    yield
    translation.deactivate()


def console_facing(entry: polib.POEntry) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for path, _line in entry.occurrences for pattern in i18n.CONSOLE_SOURCES)


def untranslated_in_german(locale_dir: Path) -> list[tuple[str, str]]:
    """(why, msgid) for each console entry without a usable German translation."""
    missing = []
    for entry in polib.pofile(str(locale_dir / "de" / "LC_MESSAGES" / "django.po")):
        if entry.obsolete or not console_facing(entry):
            continue
        if entry.fuzzy:
            missing.append(("fuzzy", entry.msgid))
        elif not (all(entry.msgstr_plural.values()) if entry.msgid_plural else entry.msgstr):
            missing.append(("empty", entry.msgid))
    return missing


# --- the catalogue ----------------------------------------------------------------------------------------------


def test_every_console_string_is_translated_in_german(extracted):  # noqa: F811
    locale_dir = extracted()

    assert untranslated_in_german(locale_dir) == []
    # not vacuous: the inbox, the ticket page, the shortcuts, the analytics and the admin actions are in the set
    entries = {e.msgid: e for e in polib.pofile(str(locale_dir / "de" / "LC_MESSAGES" / "django.po"))}
    for msgid in (
        "Mine",
        "Unassigned",
        "Keyboard shortcuts",
        "Reply to %(name)s",
        "Analytics are for managers",
        "Re-index now",
        "Pending (waiting on customer)",
    ):
        assert console_facing(entries[msgid]), msgid
    assert sum(console_facing(e) for e in entries.values()) > 400


def test_a_new_or_changed_console_string_fails_until_translated_in_german(extracted, tmp_path):  # noqa: F811
    # given a new sentence in a console template and a changed one in the console's Python
    page = tmp_path / "templates" / "admin" / "tickets" / "ticket" / "shortcuts.html"
    page.write_text(page.read_text().replace("</dialog>", '<p>{% translate "A brand new console line" %}</p></dialog>'))
    admin = tmp_path / "tickets" / "admin" / "tickets.py"
    admin.write_text(admin.read_text().replace('"Draft discarded."', '"The draft was discarded."'))

    # when the strings are extracted
    missing = untranslated_in_german(extracted())

    # then both are reported: the new one empty, the changed one fuzzy (msgmerge's guess)
    assert set(missing) == {("empty", "A brand new console line"), ("fuzzy", "The draft was discarded.")}


# --- words outside translation tags -------------------------------------------------------------------------------

# What a console template may show untranslated: language names written in themselves, keys on the keyboard,
# a file format, a percentile, a class name the lexer sees as text. Anything else is a sentence to wrap.
NOT_WORDS = {"English", "Deutsch", "CSV", "CSV:", "p95", "sf-ticket-page", "Enter", "Esc", "⇧R"}
NOT_WORDS |= set("jkuornmaeR")


def console_templates() -> list[Path]:
    return sorted(
        path
        for path in (ROOT / "templates").rglob("*.html")
        if any(fnmatch.fnmatch(str(path.relative_to(ROOT)), pattern) for pattern in i18n.CONSOLE_SOURCES)
    )


@pytest.mark.parametrize("template", console_templates(), ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_a_console_template_has_no_words_outside_translation_tags(template):
    assert [text for text in literal_text(template.read_text()) if text not in NOT_WORDS] == []


def test_the_console_scan_covers_the_inbox_the_ticket_page_and_the_analytics():
    names = {str(p.relative_to(ROOT / "templates")) for p in console_templates()}
    assert {
        "admin/base_site.html",
        "admin/tickets/ticket/change_form.html",
        "admin/tickets/ticket/inbox_nav.html",
        "admin/tickets/ticket/shortcuts.html",
        "admin/knowledge/article/upload.html",
        "analytics/overview.html",
        "analytics/_tiles.html",
    } <= names


# --- the pages --------------------------------------------------------------------------------------------------

GERMAN = "de-DE,de;q=0.9,en;q=0.5"
ENGLISH_LEFT = ("Keyboard shortcuts", "Back to the list", "Unassigned", "Assign to me", "Customer since", "Save triage")


@pytest.fixture
def console(department):
    agent = make_agent(department)
    ticket = make_ticket(department=department, subject="Sync hängt", body="Meine Synchronisierung hängt.")
    client = Client(HTTP_ACCEPT_LANGUAGE=GERMAN)
    client.force_login(agent)
    return client, agent, ticket


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.mark.django_db
def test_the_inbox_is_in_german_for_a_german_browser(console):
    client, _agent, ticket = console

    response = client.get(reverse("admin:tickets_ticket_changelist"), {"view": "all"})

    html = _text(response)
    assert response.status_code == 200
    assert response["Content-Language"] == "de"
    for german in ("Meine", "Nicht zugewiesen", "Alle offenen", "Neues Ticket", "Tastenkürzel", "Betreff", "Referenz"):
        assert german in html, german
    assert ticket.reference in html
    for english in (*ENGLISH_LEFT, ">Mine<", ">Subject<", "New ticket"):
        assert english not in html, english


@pytest.mark.django_db
def test_the_ticket_page_is_in_german_with_german_dates(console):
    client, _agent, ticket = console

    response = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))

    html = _text(response)
    assert response.status_code == 200
    for german in ("Antworten an", "Zurück zur Liste", "Mir zuweisen", "Kunde seit", "Triage speichern", "Kategorie"):
        assert german in html, german
    for english in ENGLISH_LEFT:
        assert english not in html, english
    created = timezone.localtime(ticket.customer.created_at)
    months = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober")
    months += ("November", "Dezember")
    assert f"{created.day}. {months[created.month - 1]} {created.year}" in html  # DATE_FORMAT in German


@pytest.mark.django_db
def test_the_switcher_posts_to_set_language_and_the_console_follows_it(console):
    _german_client, agent, ticket = console
    english = Client(HTTP_ACCEPT_LANGUAGE="en")
    english.force_login(agent)
    page = english.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    assert 'action="/i18n/setlang/"' in page.content.decode()
    assert 'value="de" lang="de" aria-pressed="false">Deutsch</button>' in page.content.decode()

    # the switcher's form: CSRF token, the language, back to the same page
    english_csrf = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    english_csrf.force_login(agent)
    refused = english_csrf.post(reverse("set_language"), {"language": "de", "next": "/admin/"})
    switched = english.post(reverse("set_language"), {"language": "de", "next": page.request["PATH_INFO"]})
    after = english.get(switched["Location"])

    assert refused.status_code == 403
    assert settings.LANGUAGE_COOKIE_NAME not in english_csrf.cookies
    assert switched.status_code == 302
    assert after["Content-Language"] == "de"
    assert "Zurück zur Liste" in after.content.decode()
    assert 'value="de" lang="de" aria-pressed="true">Deutsch</button>' in after.content.decode()


@pytest.mark.django_db
def test_the_analytics_pages_are_in_german(department):
    manager = make_staff(role=roles.MANAGERS, departments=(department,))
    client = Client(HTTP_ACCEPT_LANGUAGE=GERMAN)
    client.force_login(manager)

    response = client.get(reverse("analytics:overview"))

    html = _text(response)
    assert response.status_code == 200, html[:300]
    for german in ("Übersicht", "Wissenslücken", "Heute neu", "Automatisierungsquote", "SLA-Einhaltung"):
        assert german in html, german
    assert "New today" not in html
    assert "Knowledge gaps" not in html


# --- what is pushed live to the agents ---------------------------------------------------------------------------

ORIGIN = (b"origin", b"http://localhost")  # asgi.py captured ALLOWED_HOSTS before "testserver" was added


def _agent_socket(agent, ticket, language: str) -> WebsocketCommunicator:
    client = Client()
    client.force_login(agent)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [ORIGIN, (b"cookie", cookie), (b"accept-language", language.encode())]
    return WebsocketCommunicator(application, f"/ws/agent/tickets/{ticket.pk}/", headers=headers)


async def _until(communicator, pattern: str, frames: int = 10) -> str:
    for _ in range(frames):
        frame = await communicator.receive_from(timeout=3)
        if re.search(pattern, frame):
            return frame
    raise AssertionError(f"no frame matching {pattern!r}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
def test_each_agent_gets_the_live_fragments_in_the_language_of_their_console(department, monkeypatch):
    renders: list[tuple[str, str]] = []
    real_render = realtime.render_messages

    def counting(messages, **kwargs):
        renders.append((kwargs["viewer"], kwargs.get("language") or translation.get_language()))
        return real_render(messages, **kwargs)

    monkeypatch.setattr(realtime, "render_messages", counting)
    ticket = make_ticket(department=department, body="My sync is stuck")
    services.ticket_update_triage(ticket=ticket, actor_kind="ai", language="en")
    german, english = make_agent(department), make_agent(department)
    sockets = [_agent_socket(german, ticket, GERMAN), _agent_socket(german, ticket, GERMAN)]
    sockets += [_agent_socket(english, ticket, "en-US,en;q=0.9"), _agent_socket(english, ticket, "es-ES")]

    async def scenario():
        for ws in sockets:
            assert (await ws.connect(timeout=5))[0]

        def worker_side():  # a Celery task's plain sync code: no request, no active language of its own
            realtime.ai_status(ticket.pk, working=True)
            services.message_create(ticket=ticket, author_kind="ai", body="Open **Settings**", ai_confidence=0.9)

        await db(worker_side)()
        frames = []
        for ws in sockets:
            frames.append((await _until(ws, "ai-status"), await _until(ws, 'data-seq="2"')))
        for ws in sockets:
            await ws.disconnect()
        return frames

    frames = async_to_sync(scenario)()

    for status, _message in frames[:2]:
        assert "Der Assistent bereitet eine Antwort vor…" in status
    for status, _message in frames[2:]:  # a Spanish browser gets the console's English, as on the page
        assert "The assistant is preparing an answer…" in status
    assert frames[0][1] == frames[1][1]
    assert frames[2][1] == frames[3][1]
    assert frames[0][1] != frames[2][1]
    # one render per audience and console language, whatever the number of sockets
    assert sorted(renders) == [("agent", "de"), ("agent", "en"), ("customer", "en")]


def test_a_socket_speaks_the_console_language_of_its_browser():
    def scope(cookie: str, accept: str) -> dict:
        return {"cookies": {settings.LANGUAGE_COOKIE_NAME: cookie}, "headers": [(b"accept-language", accept.encode())]}

    assert i18n.console_from_scope(scope("", GERMAN)) == "de"
    assert i18n.console_from_scope(scope("de", "en")) == "de"
    assert i18n.console_from_scope(scope("fr", GERMAN)) == "en"  # the cookie wins, and French is not the console's
    assert i18n.console_from_scope(scope("", "")) == "en"


@pytest.mark.django_db
def test_the_ai_panel_placeholder_pushed_to_agents_is_rendered_per_language(monkeypatch):
    sent: list[tuple[realtime.Audience, str]] = []
    monkeypatch.setattr(realtime, "send_html", lambda *sends: sent.extend(sends))

    realtime.broadcast_ai_panel(7)

    assert [audience for audience, _html in sent] == [
        realtime.agent_audience(7, "en"),
        realtime.agent_audience(7, "de"),
    ]
    assert "Loading the AI draft…" in sent[0][1]
    assert "KI-Entwurf wird geladen…" in sent[1][1]


@pytest.mark.django_db
def test_what_an_action_reports_is_in_the_agents_language(console, department):
    client, _agent, resolvable = console
    closed = make_ticket(department=department, subject="Erledigt")
    services.ticket_close(ticket=closed)
    data = {"action": "resolve", "index": "0", "select_across": "0", "_selected_action": [resolvable.pk, closed.pk]}

    response = client.post(reverse("admin:tickets_ticket_changelist") + "?view=all", data, follow=True)

    flashed = [str(m) for m in response.context["messages"]]
    assert f"Gelöst: 1 Ticket ({resolvable.reference})." in flashed
    assert f"{closed.reference}: {closed.reference} kann nicht von „geschlossen“ zu „gelöst“ wechseln." in flashed
    closed.refresh_from_db()
    assert closed.status == "closed"
