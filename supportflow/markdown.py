"""Message text to safe HTML: a small markdown subset (paragraphs, line breaks, emphasis, links,
lists, inline code and code blocks), then sanitised by nh3 with an allowlist.

Raw HTML in a message is never passed through: markdown-it runs with ``html=False`` (it escapes
it) and nh3 removes anything outside the allowlist as a second line of defence, including for text
an LLM wrote.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {"p", "br", "a", "ul", "ol", "li", "code", "pre", "em", "strong", "blockquote"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("zero", {"html": False, "linkify": True, "breaks": True, "typographer": False})
    md.enable(
        [
            "paragraph",
            "newline",
            "emphasis",
            "link",
            "autolink",
            "linkify",
            "list",
            "backticks",
            "fence",
            "code",
            "blockquote",
            "escape",
            "entity",
            "text_join",
        ]
    )
    md.validateLink = lambda url: url.strip().lower().startswith(("http://", "https://", "mailto:"))
    return md


@lru_cache(maxsize=512)
def render_message(text: str) -> str:
    """Cached: a broadcast renders each new message for two audiences, a resync re-renders history."""
    html = _markdown().render(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener nofollow noreferrer",
        strip_comments=True,
    )


ARTICLE_TAGS = ALLOWED_TAGS | {"h2", "h3", "h4", "h5", "table", "thead", "tbody", "tr", "th", "td", "hr"}


@lru_cache(maxsize=1)
def _article_markdown() -> MarkdownIt:
    """Knowledge-base articles: CommonMark plus tables, still without raw HTML or images."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False}).enable(["table", "linkify"])
    md.disable(["image", "html_block", "html_inline"])
    md.validateLink = lambda url: url.strip().lower().startswith(("http://", "https://", "mailto:", "/", "#"))
    return md


@lru_cache(maxsize=256)
def render_article(text: str) -> str:
    """An article body as safe HTML; its top-level heading is demoted (the page's h1 is the title)."""
    html = _article_markdown().render(text or "").replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    return nh3.clean(
        html,
        tags=ARTICLE_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener nofollow noreferrer",
        strip_comments=True,
    )
