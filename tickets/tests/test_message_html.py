"""``tickets.message_html`` renders a chat message exactly as the template partial it replaced did.

The message ``<li>`` moved from a template partial to Python for the chat's hot path (three renders per
message). ``REFERENCE`` below is that partial as it was, and every combination that changes the output —
each author kind for each viewer, internal notes, the AI's confidence and sources (good, dropped and odd
links; one deliberate difference, below), the customer's feedback, the feedback form, hostile text, four languages and a time zone — must
come out byte for byte the same. The pages' tag and the live fragments both use the new renderer."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.template import engines
from django.utils import timezone, translation

from tickets import realtime
from tickets.message_html import message_html
from tickets.models import Message, Ticket

REFERENCE = (
    "{% load chat i18n partials %}"
    + '<li id="msg-{{ m.seq }}" class="msg msg-{{ m.author_kind }}{% if m.is_internal %} msg-internal{% endif %}" data-seq="{{ m.seq }}"{% if m.client_msg_id %} data-client-id="{{ m.client_msg_id }}"{% endif %}>\n  <div class="msg-meta">\n    <span class="msg-author">{% if m.author_kind == "customer" %}{% if viewer == "customer" %}{% translate "You" %}{% else %}{{ customer_name|default:_("Customer") }}{% endif %}{% elif m.author_kind == "agent" %}{% if viewer == "agent" %}{{ m.author_user.get_username|default:_("Agent") }}{% elif m.author_user.first_name %}{{ m.author_user.first_name }}{% else %}{% translate "Support" context "the author of a message" %}{% endif %}{% elif m.author_kind == "ai" %}{% translate "Assistant" %}{% else %}{{ site_name }}{% endif %}</span>\n    {% if m.author_kind == "ai" %}<span class="badge badge-ai" title="{% translate \'Written by the AI from our help articles\' %}">{% translate "AI" context "badge on a message written by the AI" %}</span>{% endif %}\n    {% if m.is_internal %}<span class="badge badge-note">{% translate "Internal note" %}</span>{% endif %}\n    {% if viewer == "agent" and m.ai_confidence is not None %}<span class="msg-conf">{% blocktranslate with confidence=m.ai_confidence|floatformat:2 %}confidence {{ confidence }}{% endblocktranslate %}</span>{% endif %}\n    <time datetime="{{ m.created_at|date:\'c\' }}">{% blocktranslate with day=m.created_at|date:"MONTH_DAY_FORMAT" time=m.created_at|time:"TIME_FORMAT" context "when a message was sent: its day and time" %}{{ day }}, {{ time }}{% endblocktranslate %}</time>\n  </div>\n  <div class="msg-body">{{ m.body|chat_markdown }}</div>\n  {% if m.citations %}<ol class="msg-sources" aria-label="{% translate \'Sources\' %}">{% for c in m.citations %}<li>{% with url=c.url|safe_link %}{% if url %}<a href="{{ url }}" rel="noopener nofollow">{{ c.title|default:url }}</a>{% else %}{{ c.title|default:c }}{% endif %}{% endwith %}</li>{% endfor %}</ol>{% endif %}\n  {% if viewer == "customer" and token and m.author_kind == "ai" and m.ai_confidence is not None %}{% include "tickets/chat.html#feedback" %}{% endif %}\n  {% if viewer == "agent" and m.feedback %}<span class="msg-feedback-seen">{% if m.feedback == "yes" %}{% translate "Customer: this answered it" %}{% else %}{% translate "Customer: this did not help" %}{% endif %}</span>{% endif %}\n</li>'
)
CITATIONS = [
    [],
    [{"title": "Returns <policy>", "url": "https://help.example.com/returns?a=1&b=2"}],
    [{"title": "", "url": "/help/articles/shipping/"}, {"title": "Bad", "url": "javascript:alert(1)"}],
    [{"url": "//evil.example.com/x"}, {"title": "no url"}],
]
BODIES = ["Where is my **order** #123? <script>alert(1)</script>", "Line one\n\n- a\n- b [link](https://x.example)"]


def user(first_name: str) -> User:
    return User(username="agent<&>", first_name=first_name)


def messages():
    when = datetime(2026, 3, 29, 0, 30, 5, tzinfo=UTC)  # the night Europe/Berlin moves to summer time
    authors = [
        ("customer", None),
        ("agent", user("Mia")),
        ("agent", user("")),
        ("agent", None),
        ("ai", None),
        ("system", None),
    ]
    for (kind, author), confidence, citations, feedback, internal in itertools.product(
        authors, [None, 0.8567], CITATIONS, ["", "yes", "no"], [False, True]
    ):
        if internal and kind == "customer":
            continue
        m = Message(
            ticket=Ticket(pk=7), seq=12, author_kind=kind, body=BODIES[len(citations) % 2], is_internal=internal,
            ai_confidence=confidence, citations=citations, feedback=feedback, created_at=when,
            client_msg_id="c-1\"<x>" if feedback == "no" else "",
        )  # fmt: skip
        m.author_user = author
        yield m


@pytest.mark.parametrize("language", ["en", "de", "fr", "es"])
@pytest.mark.parametrize("viewer", ["customer", "agent"])
def test_the_renderer_equals_the_partial_it_replaced(language, viewer):
    reference = engines["django"].from_string(REFERENCE)
    compared = 0
    with translation.override(language), timezone.override("Europe/Berlin"):
        for m in messages():
            for token, customer_name in [("", ""), ("tok-abc", "Ann <O'Neil>")]:
                context = {"m": m, "viewer": viewer, "customer_name": customer_name, "token": token,
                           "site_name": "Acme & Co"}  # fmt: skip
                expected = reference.render(context)
                got = message_html(m, viewer=viewer, customer_name=customer_name, token=token, site_name="Acme & Co")
                assert got == expected, (m.author_kind, m.citations, m.feedback, token)
                compared += 1
    assert compared > 500


def test_a_source_given_as_plain_text_is_shown_as_written():
    """The one deliberate difference: the partial resolved ``c.title`` on a string to ``str.title`` and
    showed "A Plain Source" for "a plain source"."""
    m = Message(ticket=Ticket(pk=7), seq=1, author_kind="ai", body="x", citations=["a plain <b>source</b>"],
                created_at=timezone.now())  # fmt: skip
    assert "<li>a plain &lt;b&gt;source&lt;/b&gt;</li>" in message_html(m, viewer="agent")


def test_the_page_tag_and_the_live_fragment_use_it():
    m = next(messages())
    with translation.override("de"):
        live = realtime.render_messages([m], viewer="agent", customer_name="Ann")
        page = (
            engines["django"]
            .from_string('{% include "tickets/chat.html#message" with viewer="agent" customer_name="Ann" %}')
            .render({"m": m})
        )
    assert live == f'<ol hx-swap-oob="beforeend:#messages">{page}</ol>'
    assert 'class="msg-author">Ann</span>' in page
    assert "<script>" not in page
