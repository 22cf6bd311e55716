"""The translation catalogues (locale/): complete for what customers read, compiled from what is committed,
and no customer template with words outside a translation tag.

- Completeness: today's code is extracted with the project's own workflow (``make messages`` →
  ``supportflow.i18n.catalogues_extract``: makemessages, i.e. GNU xgettext + msgmerge) into a copy of the
  committed catalogues, in a temporary copy of the sources. A string added to the code arrives there empty;
  one whose English changed arrives fuzzy. Every entry coming from a customer-facing source
  (``CUSTOMER_FACING_SOURCES``) must have a non-fuzzy translation in de, es and fr.
- Staleness: the committed ``.mo`` files are what the app reads; each must hold exactly the translations of
  its ``.po`` (compared entry by entry, so any msgfmt version passes).
- Literal text: a customer template is scanned with Django's own template lexer and an HTML parser; words
  outside ``{% translate %}``/``{% blocktranslate %}`` — in the text or in an attribute a person reads
  (title, placeholder, aria-label, alt, the chat script's data-text-*) — fail. This catches an English
  sentence pasted into a template, which makemessages cannot see at all.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.template.base import Lexer, TokenType

from supportflow import i18n

ROOT = Path(settings.BASE_DIR)
LOCALE = ROOT / "locale"
SOURCE_SUFFIXES = {".py", ".html", ".txt"}  # what makemessages reads for the "django" domain


# --- completeness -----------------------------------------------------------------------------------------


def customer_facing(entry: polib.POEntry) -> bool:
    return any(
        fnmatch.fnmatch(path, pattern) for path, _line in entry.occurrences for pattern in i18n.CUSTOMER_FACING_SOURCES
    )


def untranslated(locale_dir: Path) -> list[tuple[str, str, str]]:
    """(language, why, msgid) for each customer-facing entry without a usable translation."""
    missing = []
    for language in i18n.CATALOGUE_LANGUAGES:
        po = polib.pofile(str(locale_dir / language / "LC_MESSAGES" / "django.po"))
        for entry in po:
            if entry.obsolete or not customer_facing(entry):
                continue
            if entry.fuzzy:
                missing.append((language, "fuzzy", entry.msgid))
            elif not (all(entry.msgstr_plural.values()) if entry.msgid_plural else entry.msgstr):
                missing.append((language, "empty", entry.msgid))
    return missing


def _copy_sources(to: Path) -> None:
    """The files makemessages would read (not the tests, not the ignored folders), and the catalogues."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [
            name
            for name in names
            if name in ("tests", "__pycache__", "locale")
            or name.startswith(".")
            or any(fnmatch.fnmatch(name, pattern) for pattern in i18n.EXTRACT_IGNORE)
            or ((Path(folder) / name).is_file() and Path(name).suffix not in SOURCE_SUFFIXES)
        ]

    for top in ROOT.iterdir():
        if top.is_dir() and not ignore(str(ROOT), [top.name]):
            shutil.copytree(top, to / top.name, ignore=ignore)
    shutil.copytree(LOCALE, to / "locale")


@pytest.fixture
def extracted(tmp_path):
    """``extract()``: today's strings (of the copy in ``tmp_path``) into the copied catalogues; returns their folder."""
    _copy_sources(tmp_path)

    def extract() -> Path:
        i18n.catalogues_extract(root=tmp_path, locale_dir=tmp_path / "locale")
        return tmp_path / "locale"

    return extract


def test_every_customer_facing_string_is_translated_in_german_spanish_and_french(extracted):
    locale_dir = extracted()

    assert untranslated(locale_dir) == []
    # not vacuous: the chat, the help center, the rating, the emails and the live notices are all in the set
    entries = {e.msgid: e for e in polib.pofile(str(locale_dir / "de" / "LC_MESSAGES" / "django.po"))}
    for msgid in (
        "Start the conversation",
        "Search the help center",
        "How did we do?",
        "Reply to this email to continue %(reference)s.",
        "%(name)s is typing…",
        "The assistant is preparing an answer…",
    ):
        assert customer_facing(entries[msgid]), msgid
    assert sum(customer_facing(e) for e in entries.values()) > 100


def test_a_new_or_changed_customer_string_fails_until_translated(extracted, tmp_path):
    # given a new sentence in a customer template and a changed one in the chat's Python
    page = tmp_path / "templates" / "tickets" / "chat_start.html"
    page.write_text(page.read_text().replace("</main>", '<p>{% translate "A brand new sentence" %}</p></main>'))
    views = tmp_path / "tickets" / "views.py"
    views.write_text(views.read_text().replace('"Write a message before sending."', '"Write a message first."'))

    # when the strings are extracted
    missing = untranslated(extracted())

    # then both are reported, in every language: the new one empty, the changed one fuzzy (msgmerge's guess)
    assert {(language, why, msgid) for language, why, msgid in missing} == {
        *((language, "empty", "A brand new sentence") for language in i18n.CATALOGUE_LANGUAGES),
        *((language, "fuzzy", "Write a message first.") for language in i18n.CATALOGUE_LANGUAGES),
    }


# --- the compiled catalogues ----------------------------------------------------------------------------------


def _translations(catalogue) -> dict[tuple[str | None, str], str | dict]:
    return {
        (e.msgctxt, e.msgid): (dict(e.msgstr_plural) if e.msgid_plural else e.msgstr)
        for e in catalogue
        if not e.obsolete and not getattr(e, "fuzzy", False) and (e.msgstr or any(e.msgstr_plural.values()))
    }


@pytest.mark.parametrize("language", i18n.CATALOGUE_LANGUAGES)
def test_each_compiled_catalogue_holds_exactly_the_translations_of_its_po_file(language):
    folder = LOCALE / language / "LC_MESSAGES"
    po, mo = polib.pofile(str(folder / "django.po")), polib.mofile(str(folder / "django.mo"))

    expected, compiled = _translations(po), _translations(mo)

    stale = {key for key in expected.keys() | compiled.keys() if expected.get(key) != compiled.get(key)}
    assert stale == set(), f"locale/{language}: run `make messages` (or `manage.py catalogues --compile-only`)"
    assert len(expected) > 100


# --- literal text in the customer's templates ------------------------------------------------------------------

READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "aria-description"}
LETTER = re.compile(r"[^\W\d_]")  # a letter, in any script
MARK = "\x1f"  # stands for a template tag or variable; never a letter


class _TextFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skipping += 1
        for name, value in attrs:
            if value and (name in READ_ATTRIBUTES or name.startswith("data-text-")) and LETTER.search(value):
                self.found.append(f'{tag}[{name}="{_shown(value)}"]')

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skipping:
            self._skipping -= 1

    def handle_data(self, data):
        if not self._skipping and LETTER.search(data):
            self.found.append(_shown(data))


def _shown(text: str) -> str:
    return " ".join(text.strip(MARK + " \t\n").replace(MARK, "…").split())


def literal_text(source: str) -> list[str]:
    """Words a person would read that are not inside a translation tag."""
    kept: list[str] = []
    inside: str | None = None  # "blocktranslate" or "comment" while inside one
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            command = token.contents.split()[0] if token.contents else ""
            if command in ("blocktranslate", "blocktrans", "comment"):
                inside = command
            elif command in ("endblocktranslate", "endblocktrans", "endcomment"):
                inside = None
            kept.append(MARK)
        elif token.token_type == TokenType.TEXT and inside is None:
            kept.append(token.contents)
        else:
            kept.append(MARK)
    finder = _TextFinder()
    finder.feed("".join(kept))
    finder.close()
    return finder.found


def customer_templates() -> list[Path]:
    return sorted(
        path
        for path in (ROOT / "templates").rglob("*")
        if path.is_file() and any(fnmatch.fnmatch(str(path.relative_to(ROOT)), p) for p in i18n.CUSTOMER_FACING_SOURCES)
    )


def test_the_scan_covers_the_chat_the_help_center_and_the_partials():
    names = {str(p.relative_to(ROOT / "templates")) for p in customer_templates()}
    assert {
        "base.html",
        "tickets/chat.html",
        "tickets/chat_start.html",
        "knowledge/help_index.html",
        "knowledge/help_article.html",
        "knowledge/suggestions.html",
        "supportflow/partials/language_switcher.html",
    } <= names


@pytest.mark.parametrize("template", customer_templates(), ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_a_customer_template_has_no_words_outside_translation_tags(template):
    assert literal_text(template.read_text()) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("<p>Hello there</p>", ["Hello there"]),
        ('<button title="Close the chat">{% translate "OK" %}</button>', ['button[title="Close the chat"]']),
        ('<input placeholder="e.g. {{ example }}">', ['input[placeholder="e.g."]']),
        ('<main data-text-connected="Connected">', ['main[data-text-connected="Connected"]']),
        ("<p>{% if a %}Thanks{% endif %}</p>", ["Thanks"]),
        ("<p>{% translate 'Hello there' %}</p>", []),
        ("<p>{% blocktranslate %}Hi {{ name }}, welcome{% endblocktranslate %}</p>", []),
        ('<p class="hint" id="x-{{ n }}">{{ n }} · 5 ›</p>', []),
        ("<script>var label = 'not read as text';</script>{% comment %}Words{% endcomment %}", []),
    ],
)
def test_the_literal_text_scan_itself(source, found):
    assert literal_text(source) == found
