"""The chat server with parts of a customer message's required work switched off, for
``chat_bench.py --ablate`` only: what each part costs the chat's delivery and CPU, measured by taking it
away (nothing here is used by the app). ``SF_BENCH_ABLATE`` is a comma-separated list of:

- ``limits``: the per-conversation and per-address rate limits (a Redis pipeline round trip) always allow;
- ``render``: the message fragments are a bare ``<li>`` with the sequence number, client id and escaped body
  instead of the pages' template partial (still one per audience: the customer, agents in each language);
- ``languages``: the agents get the fragment in one console language, not in each;
- ``ai``: the AI enqueue (a Celery ``send_task`` to the ``ai`` queue) is skipped;
- ``events``: the ``message.created`` subscribers (webhooks, metrics, analytics) are skipped.

    uvicorn --app-dir bench ablation_asgi:application   (chat_bench.py --ablate render,ai does it)
"""

from __future__ import annotations

import os

from supportflow.asgi import application  # Django is set up by this import

ABLATE = frozenset(part for part in os.environ.get("SF_BENCH_ABLATE", "").split(",") if part)
PARTS = ("limits", "render", "languages", "ai", "events")
if unknown := ABLATE - set(PARTS):
    raise SystemExit(f"SF_BENCH_ABLATE: unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")


def _switch_off() -> None:
    from django.conf import settings
    from django.utils.html import format_html, format_html_join

    from supportflow import ratelimit
    from tickets import events, realtime, tasks

    if "limits" in ABLATE:

        async def allow(checks):
            return ratelimit.Verdict(True), -1

        ratelimit.ahit_all = allow
    if "render" in ABLATE:

        def bare(messages, *, viewer, customer_name="", token="", language=None):
            rows = format_html_join(
                "",
                '<li id="msg-{}" data-seq="{}" data-client-id="{}">{}</li>',
                ((m.seq, m.seq, m.client_msg_id, m.body) for m in messages),
            )
            return format_html('<ol hx-swap-oob="beforeend:#messages">{}</ol>', rows)

        realtime.render_messages = bare
    if "languages" in ABLATE:
        settings.CONSOLE_LANGUAGES = settings.CONSOLE_LANGUAGES[:1]
    if "ai" in ABLATE:
        tasks.ai_enqueue = lambda message_id: None
    if "events" in ABLATE:
        events.publish_committed = lambda *args, **kwargs: None


_switch_off()

__all__ = ["application"]
