"""One chat message as HTML: the ``<li>`` every page and every live fragment shows.

Written in Python rather than as a template partial because it is on the chat's hot path: each message a
customer sends is rendered three times (for the customer and for the console's two languages), and the
template engine spent ≈ 0.2 ms on each (node walking, variable lookups, ``blocktranslate``'s context
copies), about a sixth of the server's CPU per chat message (``docs/benchmarks.md``). The pages use the same
function through the ``chat_message`` tag (``tickets/chat.html#message``), so there is one renderer.

Everything that comes from a person or the AI is escaped here (``conditional_escape``), and the body goes
through the same sanitising Markdown renderer as before. The feedback form under an AI answer, which needs
URLs and the CSRF token, stays a template partial (``tickets/chat.html#feedback``): it is rendered only for
the customer, under AI answers.
"""

from __future__ import annotations

from django.conf import settings
from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string
from django.utils import formats, timezone
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from django.utils.translation import gettext, pgettext

from supportflow.markdown import render_message

FEEDBACK_TEMPLATE = "tickets/chat.html#feedback"


def safe_link(url) -> str:
    """A citation link only if it is ours (path) or http(s); anything else (javascript:, data:) is dropped."""
    if not isinstance(url, str):
        return ""
    url = url.strip()
    if url.startswith("/") and not url.startswith("//"):
        return url
    return url if url.lower().startswith(("http://", "https://")) else ""


def _author(m, viewer: str, customer_name: str, site_name: str) -> str:
    kind = m.author_kind
    if kind == "customer":
        return gettext("You") if viewer == "customer" else (customer_name or gettext("Customer"))
    if kind == "agent":
        user = m.author_user
        if viewer == "agent":
            return (user.get_username() if user is not None else "") or gettext("Agent")
        if user is not None and user.first_name:
            return user.first_name
        return pgettext("the author of a message", "Support")
    if kind == "ai":
        return gettext("Assistant")
    return site_name


def _sources(citations) -> str:
    e = conditional_escape
    items = []
    for c in citations:
        if isinstance(c, dict):
            url, title = safe_link(c.get("url")), c.get("title")
        else:
            url, title = "", ""
        if url:
            items.append(f'<li><a href="{e(url)}" rel="noopener nofollow">{e(title or url)}</a></li>')
        else:
            items.append(f"<li>{e(title or c)}</li>")
    return f'<ol class="msg-sources" aria-label="{e(gettext("Sources"))}">{"".join(items)}</ol>'


def message_html(
    m, *, viewer: str, customer_name: str = "", token: str = "", site_name: str | None = None, context=None
) -> SafeString:
    """The ``<li>`` of message ``m`` as ``viewer`` ("customer" or "agent") sees it, in the active language
    and time zone. ``token``: the customer's conversation link, for the feedback form under an AI answer;
    ``context``: the page's template context, passed to that form (its CSRF token, a feedback error)."""
    e = conditional_escape
    site_name = settings.SITE_NAME if site_name is None else site_name
    created = timezone.localtime(m.created_at) if timezone.is_aware(m.created_at) else m.created_at
    classes = f"msg msg-{e(m.author_kind)}" + (" msg-internal" if m.is_internal else "")
    client_id = f' data-client-id="{e(m.client_msg_id)}"' if m.client_msg_id else ""
    ai_badge = note_badge = confidence = sources = feedback = seen = ""
    if m.author_kind == "ai":
        ai_badge = (
            f'<span class="badge badge-ai" title="{e(gettext("Written by the AI from our help articles"))}">'
            f"{e(pgettext('badge on a message written by the AI', 'AI'))}</span>"
        )
    if m.is_internal:
        note_badge = f'<span class="badge badge-note">{e(gettext("Internal note"))}</span>'
    if viewer == "agent" and m.ai_confidence is not None:
        figure = gettext("confidence %(confidence)s") % {"confidence": e(floatformat(m.ai_confidence, 2))}
        confidence = f'<span class="msg-conf">{figure}</span>'
    when = pgettext("when a message was sent: its day and time", "%(day)s, %(time)s") % {
        "day": e(formats.date_format(created, "MONTH_DAY_FORMAT")),
        "time": e(formats.time_format(created, "TIME_FORMAT")),
    }
    if m.citations:
        sources = _sources(m.citations)
    if viewer == "customer" and token and m.author_kind == "ai" and m.ai_confidence is not None:
        extra = context.flatten() if context is not None else {}
        feedback = render_to_string(FEEDBACK_TEMPLATE, {**extra, "m": m, "token": token})
    if viewer == "agent" and m.feedback:
        said = gettext("Customer: this answered it") if m.feedback == "yes" else gettext("Customer: this did not help")
        seen = f'<span class="msg-feedback-seen">{e(said)}</span>'
    # the same lines and indentation as the template partial this replaced (tests compare the two)
    return SafeString(
        f'<li id="msg-{m.seq}" class="{classes}" data-seq="{m.seq}"{client_id}>\n'
        f'  <div class="msg-meta">\n'
        f'    <span class="msg-author">{e(_author(m, viewer, customer_name, site_name))}</span>\n'
        f"    {ai_badge}\n    {note_badge}\n    {confidence}\n"
        f'    <time datetime="{e(created.isoformat())}">{when}</time>\n'
        f"  </div>\n"
        f'  <div class="msg-body">{render_message(m.body)}</div>\n'
        f"  {sources}\n  {feedback}\n  {seen}\n</li>"
    )
