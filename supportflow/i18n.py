"""Languages: which of ours a code, a cookie or a browser asks for, the console's narrower set, and the
catalogues' workflow (``make messages``: extract, then compile).

Customer pages speak ``settings.LANGUAGES`` (en, de, es, fr); the agent console and the manager pages only
``settings.CONSOLE_LANGUAGES`` (en, de): Django's own admin strings exist in many more languages, and a
Spanish browser would otherwise get a console half in Spanish, half in English. Which language a
conversation is in is the tickets app's business (``tickets.languages``); this module imports no app.

The catalogues live in ``locale/<lang>/LC_MESSAGES/django.po`` with their compiled ``.mo`` beside them,
committed: running the app (``make run``, the image, CI) needs no GNU gettext; only extracting strings
does (``xgettext``, ``msgmerge``, ``msgfmt``), and a test fails when a ``.mo`` is older than its ``.po``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

CONSOLE_PATH_PREFIXES = ("/admin/", "/analytics/")
CATALOGUE_LANGUAGES = ("de", "es", "fr")  # English is the source
# What string extraction skips besides dot directories (.venv, .data, .git): no strings of ours live there.
EXTRACT_IGNORE = (
    "staticfiles",
    "static",
    "media",
    "docs",
    "bench",
    "tools",
    "deploy",
    "docker",
    "node_modules",
    "*/tests/*",
    "conftest.py",
)


def supported(code: str | None) -> str:
    """The language of ours that ``code`` names ("de-AT" → "de"), or "" when it names none."""
    if not code or not isinstance(code, str) or len(code) > 35:
        return ""
    try:
        return translation.get_supported_language_variant(code.strip())
    except LookupError:
        return ""


def chosen(cookies: dict[str, str]) -> str:
    """The language the visitor picked with the switcher (Django's language cookie), if it is one of ours."""
    return supported(cookies.get(settings.LANGUAGE_COOKIE_NAME))


def from_accept_language(header: str) -> str:
    """The first of ours the browser asks for, in its order of preference ("" when none)."""
    for code, _quality in parse_accept_lang_header(header or ""):
        if code != "*" and (language := supported(code)):
            return language
    return ""


def from_scope(scope: dict) -> str:
    """What ``LocaleMiddleware`` would pick for a websocket: the language cookie, else Accept-Language."""
    picked = chosen(scope.get("cookies") or {})
    if picked:
        return picked
    headers = dict(scope.get("headers") or ())
    return from_accept_language(headers.get(b"accept-language", b"").decode("latin-1"))


def console(code: str | None) -> str:
    """``code`` when the console is translated into it, else the default (English)."""
    return code if code in set(settings.CONSOLE_LANGUAGES) else settings.LANGUAGE_CODE


def console_from_scope(scope: dict) -> str:
    """The language of an agent's socket: what the console's pages are in for the same browser (the cookie,
    else Accept-Language, kept to ``CONSOLE_LANGUAGES`` like ``ConsoleLanguageMiddleware`` keeps the page)."""
    return console(from_scope(scope))


class ConsoleLanguageMiddleware:
    """After ``LocaleMiddleware``: on the console's pages a language outside ``CONSOLE_LANGUAGES`` falls back
    to the default (English), so an agent never gets a console in a language it is not translated into."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(CONSOLE_PATH_PREFIXES) and console(translation.get_language()) != (
            translation.get_language()
        ):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)


# Where the strings a customer reads come from (fnmatch patterns, relative to the project root; "*" spans
# folders): every entry of the catalogues with one of these among its sources must be translated into every
# language of CATALOGUE_LANGUAGES (tickets/tests/test_i18n_catalogues.py).
CUSTOMER_FACING_SOURCES = (
    "templates/base.html",
    "templates/tickets/*",
    "templates/knowledge/*",
    "templates/supportflow/*",
    "tickets/views.py",
    "tickets/forms.py",
    "tickets/consumers.py",
    "tickets/realtime.py",
    "tickets/message_html.py",
    "tickets/limits.py",
    "tickets/services/conversations.py",
    "tickets/services/customer.py",
    "tickets/services/drafts.py",
    "tickets/services/merge.py",
    "tickets/email/*",
    "tickets/widget/views.py",  # the website widget's pages and refusals (tickets.widget)
    "tickets/widget/selectors.py",
    "knowledge/views.py",
    "supportflow/resilience.py",
)


# Where the strings an agent or a manager reads come from (same patterns): every entry with one of these among
# its sources must be translated into every console language but English (German), non-fuzzy. Spanish and
# French stay empty for the console; Django's own admin strings come from Django's catalogues.
CONSOLE_SOURCES = (
    "templates/admin/*",
    "templates/analytics/*",
    "tickets/admin/*",
    "tickets/inbox.py",
    "tickets/models/*",
    "tickets/services/intake.py",
    "tickets/services/macros.py",
    "tickets/services/queues.py",
    "tickets/services/saved_views.py",
    "tickets/services/tags.py",
    "tickets/services/triage_models.py",  # the model registry's refusals, read by managers
    "tickets/widget/origins.py",  # the widget sites' form errors
    "knowledge/admin.py",
    "analytics/views.py",
    "supportflow/admin.py",
)


def catalogues_extract(*, root: Path | None = None, locale_dir: Path | None = None) -> None:
    """``makemessages`` over ``root`` (default: the project) into ``locale_dir`` (default: the project's
    ``locale/``): new strings come in untranslated, changed ones fuzzy, gone ones are dropped."""
    with contextlib.chdir(root or settings.BASE_DIR), _locale_paths(locale_dir):
        call_command(
            "makemessages",
            locale=list(CATALOGUE_LANGUAGES),
            ignore_patterns=list(EXTRACT_IGNORE),
            no_obsolete=True,
            add_location="file",  # without line numbers: moving a line does not churn every catalogue
            verbosity=0,
        )


def catalogues_compile(*, locale_dir: Path | None = None) -> None:
    """``compilemessages`` for our catalogues only (not the .po files of packages in .venv)."""
    with contextlib.chdir(settings.BASE_DIR), _locale_paths(locale_dir):
        call_command(
            "compilemessages",
            locale=list(CATALOGUE_LANGUAGES),
            ignore_patterns=[".*", *EXTRACT_IGNORE, "*/site-packages/*"],
            verbosity=0,
        )


def _locale_paths(locale_dir: Path | None):
    from django.test.utils import override_settings  # tests and the command only, not every web process

    return override_settings(LOCALE_PATHS=[locale_dir]) if locale_dir else contextlib.nullcontext()
