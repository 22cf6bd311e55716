"""The website widget in a real browser, embedded in a page served from ANOTHER origin.

The app runs on the live server (http://127.0.0.1:<port>); the customer's "website" is a second tiny HTTP
server on http://localhost:<other port> — another origin and another site, so none of our cookies reach the
framed chat, as on a real customer's site. Headless Chromium (Debian's) drives both; real PostgreSQL, the
Redis channel layer and the websocket carry the conversation.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, expect

from tickets import selectors, services
from tickets.models import Ticket, WidgetSite
from tickets.tests import browser as harness
from tickets.tests.a11y import axe_violations, describe
from tickets.tests.factories import DepartmentFactory
from tickets.tests.test_chat_browser import make_live_agent
from tickets.tests.test_i18n_browser import in_another_process_like_thread as elsewhere
from tickets.widget import services as widget_services

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)

expect.set_options(timeout=15_000)

THREAD = "#messages li.msg[data-seq]"
LAUNCHER = "Chat with us"


class SitePages:
    """The customer's website: a second HTTP server, on another origin, serving pages that embed the script."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer((harness.HOST, 0), Handler)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="site-pages", daemon=True)
        self.thread.start()

    def embed(self, path: str, script_src: str, site_key: str, **data: str) -> str:
        attrs = "".join(f' data-{name.replace("_", "-")}="{html.escape(value)}"' for name, value in data.items())
        self.pages[path] = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Shop</title></head><body>"
            "<main><h1>Our shop</h1><p>Products.</p></main>"
            f'<script src="{html.escape(script_src)}" data-site="{html.escape(site_key)}"{attrs} async></script>'
            "</body></html>"
        )
        return self.origin + path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site_pages():
    pages = SitePages()
    yield pages
    pages.stop()


@pytest.fixture
def shop(site_pages) -> WidgetSite:
    return widget_services.widget_site_create(
        name="Shop", allowed_origins=[site_pages.origin], department=DepartmentFactory(name="Web")
    )


def launcher(page: Page):
    return page.get_by_role("button", name=LAUNCHER)


def chat(page: Page):
    return page.frame_locator("iframe[title='Support chat']")


def stored_token(page: Page, site: WidgetSite) -> str:
    return page.evaluate("key => localStorage.getItem(key) || ''", f"supportflow-widget:{site.public_key}")


def start_in_widget(page: Page, body: str, *, name: str | None = "Casey") -> None:
    frame = chat(page)
    if name is not None:
        frame.get_by_label("Your name").fill(name)
    frame.get_by_label("How can we help?").fill(body)
    frame.get_by_role("button", name="Start the conversation").click()
    expect(frame.locator(THREAD).filter(has_text=body)).to_have_count(1)
    expect(frame.locator("#connection")).to_have_text("Connected")


def test_a_visitor_chats_in_the_widget_on_another_origin(new_context, asgi_server, site_pages, shop):
    agent = make_live_agent()
    url = site_pages.embed("/shop.html", f"{asgi_server.url}/widget.js", shop.public_key)
    page = new_context().new_page()
    page.goto(url)

    # the launcher is a real button; it opens the chat and moves focus into it
    expect(launcher(page)).to_have_attribute("aria-expanded", "false")
    launcher(page).click()
    expect(launcher(page)).to_have_attribute("aria-expanded", "true")
    start_in_widget(page, "My notes do not sync")
    ticket = Ticket.objects.get(widget_conversation__site=shop)
    key = f"supportflow-widget:{shop.public_key}"
    page.wait_for_function("key => !!localStorage.getItem(key)", arg=key)
    assert selectors.ticket_get_for_customer(token=stored_token(page, shop)) == ticket  # the site keeps the token
    assert ticket.department.name == "Web"

    # a message from the widget, and the agent's reply live
    frame = chat(page)
    frame.locator("#body").fill("It says offline")
    frame.get_by_role("button", name="Send", exact=True).click()
    expect(frame.locator(THREAD).filter(has_text="It says offline")).to_have_count(1)
    assert ticket.messages.filter(author_kind="customer", body="It says offline").exists()
    elsewhere(
        lambda: services.message_create(
            ticket=ticket, author_kind="agent", author_user=agent, body="Try signing out and in."
        )
    )
    expect(frame.locator(THREAD).filter(has_text="Try signing out and in.")).to_have_count(1)

    # Esc inside the chat closes it, focus back on the launcher; a reply while closed raises the badge
    frame.locator("#body").focus()
    page.keyboard.press("Escape")
    expect(launcher(page)).to_have_attribute("aria-expanded", "false")
    expect(launcher(page)).to_be_focused()
    expect(page.get_by_role("dialog", name="Support chat")).to_be_hidden()
    elsewhere(
        lambda: services.message_create(
            ticket=ticket, author_kind="ai", body="You can also pull down to sync.", ai_confidence=0.9, citations=[]
        )
    )
    expect(page.get_by_role("button", name=f"{LAUNCHER} (1 unread)")).to_be_visible()
    expect(page.locator("[data-supportflow-widget] .badge")).to_have_text("1")
    launcher(page).click()
    expect(frame.locator(THREAD).filter(has_text="You can also pull down to sync.")).to_have_count(1)
    expect(page.locator("[data-supportflow-widget] .badge")).to_be_hidden()

    # a reload keeps the conversation: the token comes back from the site's localStorage, no cookie
    page.reload()
    launcher(page).click()
    expect(chat(page).locator(THREAD).filter(has_text="It says offline")).to_have_count(1)
    expect(chat(page).locator("#connection")).to_have_text("Connected")
    assert all(cookie["name"] != "sf_chat" for cookie in page.context.cookies())

    violations = {"site page with the widget open": axe_violations(page)}
    violations["the chat in the widget"] = axe_violations(page.frame(url=lambda u: "/chat/widget/" in u))
    assert not any(violations.values()), describe(violations)


def test_a_site_not_in_the_list_cannot_frame_the_chat(new_context, asgi_server, site_pages):
    elsewhere = widget_services.widget_site_create(name="Elsewhere", allowed_origins=["https://shop.example.com"])
    url = site_pages.embed("/other.html", f"{asgi_server.url}/widget.js", elsewhere.public_key)
    page = new_context().new_page()
    page.goto(url)
    with page.expect_console_message(lambda m: "frame-ancestors" in m.text) as refused:
        launcher(page).click()
    assert "https://shop.example.com" in refused.value.text
    assert chat(page).locator("#main").count() == 0
    framed = [f for f in page.frames if f.url.startswith(asgi_server.url)]
    assert all(f.locator("#main").count() == 0 for f in framed)


def sign(site: WidgetSite, user_id: str) -> str:
    return hmac.new(site.identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def test_a_signed_in_visitor_is_tied_to_their_customer(new_context, asgi_server, site_pages, shop):
    identity = {"user_id": "u-7", "user_email": "ada@example.com", "user_name": "Ada", "user_hash": sign(shop, "u-7")}
    url = site_pages.embed("/account.html", f"{asgi_server.url}/widget.js", shop.public_key, **identity)
    page = new_context().new_page()
    page.goto(url)
    launcher(page).click()
    expect(chat(page).locator("#widget-identity")).to_have_text("Ada")
    expect(chat(page).get_by_label("Your name")).to_be_hidden()
    start_in_widget(page, "Where is my invoice?", name=None)
    ticket = Ticket.objects.select_related("customer", "widget_conversation").get()
    assert (ticket.customer.email, ticket.customer.name) == ("ada@example.com", "Ada")
    assert ticket.widget_conversation.identity_verified
    assert ticket.widget_conversation.external_user_id == "u-7"


def test_a_wrongly_signed_visitor_is_refused_and_may_go_on_as_a_guest(new_context, asgi_server, site_pages, shop):
    identity = {"user_id": "u-7", "user_email": "ada@example.com", "user_name": "Ada", "user_hash": "0" * 64}
    url = site_pages.embed("/forged.html", f"{asgi_server.url}/widget.js", shop.public_key, **identity)
    page = new_context().new_page()
    page.goto(url)
    launcher(page).click()
    frame = chat(page)
    expect(frame.locator("#widget-identity")).to_have_text("Ada")
    frame.get_by_label("How can we help?").fill("Show me Ada's invoices")
    with page.expect_console_message(lambda m: "identity was refused" in m.text):
        frame.get_by_role("button", name="Start the conversation").click()
    expect(frame.get_by_role("alert")).to_contain_text("sign-in could not be verified")
    assert not Ticket.objects.exists()

    frame.get_by_label("Your name").fill("Guest")
    expect(frame.get_by_label("How can we help?")).to_have_value("Show me Ada's invoices")
    frame.get_by_role("button", name="Start the conversation").click()
    expect(frame.locator(THREAD).filter(has_text="Show me Ada's invoices")).to_have_count(1)
    ticket = Ticket.objects.select_related("customer", "widget_conversation").get()
    assert ticket.customer.name == "Guest"
    assert ticket.customer.email != "ada@example.com"
    assert not ticket.widget_conversation.identity_verified
