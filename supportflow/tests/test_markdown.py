from __future__ import annotations

import pytest

from supportflow.markdown import render_message
from tickets.templatetags.chat import safe_link


@pytest.mark.parametrize(
    ("text", "must_contain", "must_not_contain"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;", "<script"),
        ('<img src=x onerror="alert(1)">', "&lt;img", "<img"),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))", "href"),
        ('[x](https://ok.example "t")', 'rel="noopener nofollow noreferrer"', "javascript"),
        ("![i](https://evil.example/p.png?leak=1)", "<a href", "<img"),
        ("visit https://example.com/a?b=1", '<a href="https://example.com/a?b=1"', "<script"),
        ("- one\n- two", "<li>one</li>", "<script"),
        ("`<b>`", "<code>&lt;b&gt;</code>", "<b>"),
        ("```\n<svg onload=alert(1)>\n```", "&lt;svg", "<svg"),
        ("<a href='https://x'>raw</a>", "&lt;a href=", "<a href='"),
        ("data:text/html;base64,PHNjcmlwdD4=", "data:text/html", "href"),
    ],
)
def test_markdown_subset_is_rendered_and_everything_else_is_inert(text, must_contain, must_not_contain):
    html = render_message(text)
    assert must_contain in html
    assert must_not_contain not in html


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://help.example/a", "https://help.example/a"),
        ("/help/articles/sync/", "/help/articles/sync/"),
        ("//evil.example/x", ""),
        ("javascript:alert(1)", ""),
        (" JAVASCRIPT:alert(1)", ""),
        ("data:text/html,x", ""),
        (None, ""),
    ],
)
def test_citation_links_are_ours_or_http_only(url, expected):
    assert safe_link(url) == expected
