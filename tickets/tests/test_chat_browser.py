"""The live chat in a real browser: the customer page and the agent console's ticket page, both on
the ASGI app served by uvicorn in this process (real PostgreSQL, Redis channel layer), driven by
headless Chromium. Each test asserts what a person sees, with Playwright's auto-waiting ``expect``."""

from __future__ import annotations

import re
import time
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tickets import selectors
from tickets.models import Message, Ticket
from tickets.tests import browser as harness
from tickets.tests.factories import DepartmentFactory, make_agent

# The harness's fixtures, made visible to this module.
browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)

AGENT_PASSWORD = "pw-for-browser-tests"
AGENT_FIRST_NAME = "Dana"
CUSTOMER_NAME = "Ada Lovelace"
THREAD = "#messages li.msg[data-seq]"
REPLY_BOX = "#sf-reply textarea[name=body]"
XSS_HTML = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
XSS_LINK = "[click](javascript:window.__xss=1)"
XSS_NAME = '<img src=x onerror="window.__xss=1">Eve'

expect.set_options(timeout=10_000)


# --- actors -----------------------------------------------------------------------------------------


def make_live_agent():
    """An agent with a known password and a first name (what customers see of them)."""
    user = make_agent(DepartmentFactory())
    user.first_name = AGENT_FIRST_NAME
    user.set_password(AGENT_PASSWORD)
    user.save()
    return user


def ticket_of(page: Page) -> Ticket:
    token = unquote(urlsplit(page.url).path.rstrip("/").split("/")[-1])
    return selectors.ticket_get_for_customer(token=token)


def start_conversation(page: Page, body: str, *, name: str = CUSTOMER_NAME) -> Ticket:
    """The customer's first visit: the start form, then the conversation page."""
    page.goto("/chat/")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("How can we help?").fill(body)
    page.get_by_role("button", name="Start the conversation").click()
    expect(page).to_have_url(re.compile(r"/chat/c/[^/]+/(#.*)?$"))
    expect(thread(page).filter(has_text=body)).to_have_count(1)
    return ticket_of(page)


def open_ticket_as_agent(context, agent, ticket: Ticket, *, page: Page | None = None) -> Page:
    """The agent signs in to the console and lands on the ticket page; its live thread connects."""
    page = page or context.new_page()
    page.goto(f"/admin/login/?next=/admin/tickets/ticket/{ticket.pk}/change/")
    page.locator("#id_username").fill(agent.get_username())
    page.locator("#id_password").fill(AGENT_PASSWORD)
    page.locator("input[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"/admin/tickets/ticket/{ticket.pk}/change/$"))
    expect_connected(page)
    return page


def thread(page: Page):
    return page.locator(THREAD)


def expect_connected(page: Page, text: str = "Connected") -> None:
    expect(page.locator("#connection")).to_have_text(text)


def send_as_customer(page: Page, body: str) -> None:
    page.locator("#body").fill(body)
    page.get_by_role("button", name="Send", exact=True).click()


def reply_as_agent(page: Page, body: str, *, internal: bool = False) -> None:
    page.locator(REPLY_BOX).fill(body)
    if internal:
        page.locator("#sf-reply input[name=is_internal]").check()
    with page.expect_response(lambda r: r.request.method == "POST" and "/change/" in r.url) as posted:
        page.locator("#sf-reply button[type=submit]").click()
    assert posted.value.status == 200, posted.value.status
    expect(page.locator("#sf-reply .sf-ok")).to_have_text("Internal note added." if internal else "Reply sent.")
    expect(page.locator(REPLY_BOX)).to_have_value("")


def mark_page(page: Page) -> None:
    """A marker that survives only as long as the document: proves no reload happened."""
    page.evaluate("window.__sameDocument = true")


def expect_same_document(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"


def seqs(page: Page) -> list[int]:
    return [int(s) for s in thread(page).evaluate_all("items => items.map(li => li.dataset.seq)")]


# --- 1. the live conversation ---------------------------------------------------------------------------


def test_customer_and_agent_talk_live_without_reloading(new_context):
    agent = make_live_agent()
    customer = new_context().new_page()
    ticket = start_conversation(customer, "My sync is stuck")
    expect_connected(customer)
    mark_page(customer)

    console = open_ticket_as_agent(new_context(), agent, ticket)
    mark_page(console)
    expect(thread(console).filter(has_text="My sync is stuck")).to_have_count(1)
    expect(customer.locator("#presence")).to_have_text(f"{AGENT_FIRST_NAME} joined the conversation")

    send_as_customer(customer, "Is anyone there?")
    expect(thread(console).filter(has_text="Is anyone there?")).to_have_count(1)
    expect(thread(console).last).to_contain_text(CUSTOMER_NAME)
    expect(thread(customer).filter(has_text="Is anyone there?")).to_have_count(1)
    expect(customer.locator("li.msg-pending")).to_have_count(0)

    reply_as_agent(console, "Hi Ada, Dana here. Let me look.")
    expect(thread(customer).filter(has_text="Hi Ada, Dana here.")).to_have_count(1)
    expect(thread(customer).last).to_contain_text(AGENT_FIRST_NAME)
    expect(thread(console).filter(has_text="Hi Ada, Dana here.")).to_have_count(1)

    customer.locator("#body").press_sequentially("Thanks", delay=20)
    expect(console.locator("#typing")).to_have_text(f"{CUSTOMER_NAME} is typing…")

    console.locator(REPLY_BOX).press_sequentially("Found it", delay=20)
    expect(customer.locator("#typing")).to_have_text(f"{AGENT_FIRST_NAME} is typing…")

    expect_same_document(customer)
    expect_same_document(console)


# --- 2. reload: the history once ---------------------------------------------------------------------


def test_reload_shows_the_whole_history_exactly_once(new_context):
    agent = make_live_agent()
    customer = new_context().new_page()
    ticket = start_conversation(customer, "First question")
    expect_connected(customer)
    console = open_ticket_as_agent(new_context(), agent, ticket)

    send_as_customer(customer, "Second message")
    expect(thread(customer).filter(has_text="Second message")).to_have_count(1)
    reply_as_agent(console, "An answer from Dana")
    reply_as_agent(console, "Internal: customer is on the old plan", internal=True)
    expect(thread(console).filter(has_text="Internal: customer is on the old plan")).to_have_count(1)
    send_as_customer(customer, "Third message")
    expect(thread(customer).filter(has_text="Third message")).to_have_count(1)
    expect(thread(customer).filter(has_text="An answer from Dana")).to_have_count(1)

    frames: list[str] = []
    customer.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(frame)))
    customer.reload()
    expect_connected(customer)
    # The resync answer (the messages after the last one rendered, then the status block) arrived.
    deadline = time.monotonic() + 10
    while not any('id="chat-status"' in str(frame) for frame in frames):
        assert time.monotonic() < deadline, "no resync answer after the reload"
        customer.wait_for_timeout(50)

    public = Message.objects.filter(ticket=ticket, is_internal=False)
    assert public.count() == 4
    expect(thread(customer)).to_have_count(public.count())
    shown = seqs(customer)
    assert len(shown) == len(set(shown)), f"a message is shown twice: {shown}"
    assert shown == sorted(public.values_list("seq", flat=True))
    expect(customer.locator("#messages")).not_to_contain_text("Internal: customer is on the old plan")
    expect(customer.locator("li.msg-pending")).to_have_count(0)


# --- 3. network drop -----------------------------------------------------------------------------------


def test_a_message_written_offline_is_delivered_once_after_reconnect(new_context, asgi_server):
    """Chromium keeps an open websocket alive under offline emulation (it only holds its frames), so
    the drop is made on the server: the customer's websocket TCP connection is aborted, as a lost
    network does, while the customer's context is offline. The page sees code 1006 at once; offline
    emulation then makes the HTTP fallback, the polling and every reconnect fail until it is back
    online (the reconnect backoff stays short because the offline window is short)."""
    agent = make_live_agent()
    customer_context = new_context()
    customer = customer_context.new_page()
    ticket = start_conversation(customer, "Before the tunnel")
    expect_connected(customer)
    console = open_ticket_as_agent(new_context(), agent, ticket)
    expect(customer.locator("#presence")).to_have_text(f"{AGENT_FIRST_NAME} joined the conversation")

    sockets = []
    customer.on("websocket", lambda ws: sockets.append(ws.url))
    customer_context.set_offline(True)
    assert asgi_server.drop_websockets("/ws/chat/") == 1
    expect(customer.locator("#connection")).to_have_text("Reconnecting…")

    send_as_customer(customer, "Written in the tunnel")
    pending = customer.locator("li.msg-pending").filter(has_text="Written in the tunnel")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("sending…")
    expect(customer.locator("#body")).to_have_value("")

    reply_as_agent(console, "Reply while you were away")
    expect(thread(console).filter(has_text="Reply while you were away")).to_have_count(1)
    customer.wait_for_timeout(200)  # long enough to arrive if the customer were online; kept short (backoff)
    expect(pending).to_have_count(1)  # still shown, not lost
    expect(thread(customer).filter(has_text="Reply while you were away")).to_have_count(0)
    assert not Message.objects.filter(ticket=ticket, body="Written in the tunnel").exists()

    customer_context.set_offline(False)
    expect(thread(customer).filter(has_text="Written in the tunnel")).to_have_count(1)
    expect(thread(customer).filter(has_text="Reply while you were away")).to_have_count(1)
    expect(customer.locator("li.msg-pending")).to_have_count(0)
    expect_connected(customer)
    expect(thread(console).filter(has_text="Written in the tunnel")).to_have_count(1)

    assert Message.objects.filter(ticket=ticket, body="Written in the tunnel").count() == 1
    customer.wait_for_timeout(300)  # a late duplicate (a second resend) would show up here
    expect(thread(customer).filter(has_text="Written in the tunnel")).to_have_count(1)
    expect(thread(console).filter(has_text="Written in the tunnel")).to_have_count(1)
    assert Message.objects.filter(ticket=ticket, body="Written in the tunnel").count() == 1
    shown = seqs(customer)
    assert shown == sorted(set(shown))
    assert len(sockets) >= 1, "delivered without a new websocket: the drop did not happen"


def test_when_the_websocket_is_refused_the_page_sends_over_http_and_polls(new_context, asgi_server, monkeypatch):
    """The fallback of chat.js: no live socket at all (the server refuses every customer socket), so a
    message is posted over HTTP and the agent's reply arrives by polling."""
    from tickets.consumers import CustomerChatConsumer

    async def refuse(self):
        await self.close(code=4403)

    monkeypatch.setattr(CustomerChatConsumer, "connect", refuse)
    agent = make_live_agent()
    customer = new_context().new_page()
    ticket = start_conversation(customer, "My firewall eats websockets")
    expect(customer.locator("#connection")).to_have_attribute("data-state", re.compile(r"^(closed|polling)$"))
    mark_page(customer)
    console = open_ticket_as_agent(new_context(), agent, ticket)

    send_as_customer(customer, "Sent over plain HTTP")
    expect(thread(customer).filter(has_text="Sent over plain HTTP")).to_have_count(1)
    expect(customer.locator("li.msg-pending")).to_have_count(0)
    expect(thread(console).filter(has_text="Sent over plain HTTP")).to_have_count(1)

    reply_as_agent(console, "Picked up by polling")
    expect(thread(customer).filter(has_text="Picked up by polling")).to_have_count(1)  # polls every 3 s
    expect(thread(customer)).to_have_count(3)
    expect_same_document(customer)
    assert Message.objects.filter(ticket=ticket, body="Sent over plain HTTP").count() == 1
    assert asgi_server.websockets("/ws/chat/") == []  # it really was all HTTP


# --- 4. XSS ----------------------------------------------------------------------------------------------


def watch_for_script(page: Page) -> list[str]:
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def expect_inert(page: Page, dialogs: list[str]) -> None:
    assert dialogs == []
    assert page.evaluate("typeof window.__xss") == "undefined"
    messages = page.locator("#messages")
    expect(messages.locator("img, script, iframe, [onerror]")).to_have_count(0)
    expect(page.locator('[onerror], img[src="x"], script:not([src])')).to_have_count(0)
    expect(page.locator('a[href^="javascript:" i]')).to_have_count(0)
    expect(messages).to_contain_text("<script>window.__xss=1</script>")
    expect(messages).to_contain_text('<img src=x onerror="window.__xss=1">')


def test_html_and_javascript_links_in_messages_are_shown_as_text(new_context):
    agent = make_live_agent()
    customer = new_context().new_page()
    customer_dialogs = watch_for_script(customer)
    ticket = start_conversation(customer, "Hello", name=XSS_NAME)
    expect_connected(customer)
    console = open_ticket_as_agent(new_context(), agent, ticket)
    console_dialogs = watch_for_script(console)
    # The name the customer chose is shown to the agent as text, in the thread and the reply box.
    expect(thread(console).first).to_contain_text(XSS_NAME)
    expect(console.locator("#sf-reply")).to_contain_text(f"Reply to {XSS_NAME}")
    customer.locator("#body").press_sequentially("typing", delay=20)
    expect(console.locator("#typing")).to_have_text(f"{XSS_NAME} is typing…")
    customer.locator("#body").fill("")

    send_as_customer(customer, XSS_HTML)
    send_as_customer(customer, XSS_LINK)
    for page in (customer, console):
        expect(thread(page).filter(has_text="<script>window.__xss=1</script>")).to_have_count(1)
        expect(thread(page).filter(has_text="javascript:window.__xss=1")).to_have_count(1)
        expect_inert(page, customer_dialogs if page is customer else console_dialogs)

    reply_as_agent(console, f"{XSS_HTML} {XSS_LINK}")
    agent_reply = thread(customer).filter(has_text=AGENT_FIRST_NAME).filter(has_text="<script>")
    expect(agent_reply).to_have_count(1)
    expect(agent_reply).to_contain_text(XSS_LINK)
    expect_inert(customer, customer_dialogs)

    # The server-rendered pages (not only the live fragments) are inert too.
    for page, dialogs in ((customer, customer_dialogs), (console, console_dialogs)):
        page.reload()
        # the customer's two messages and the agent's reply, each carrying one of the payloads or both
        expect(thread(page).filter(has_text="<script>window.__xss=1</script>")).to_have_count(2)
        expect(thread(page).filter(has_text="javascript:window.__xss=1")).to_have_count(2)
        expect_inert(page, dialogs)


# --- 5. rating -------------------------------------------------------------------------------------------


def test_resolving_shows_the_rating_form_live_and_the_rating_is_stored(new_context):
    agent = make_live_agent()
    customer = new_context().new_page()
    ticket = start_conversation(customer, "Please close my account")
    expect_connected(customer)
    mark_page(customer)
    console = open_ticket_as_agent(new_context(), agent, ticket)
    expect(customer.get_by_text("How did we do?")).to_have_count(0)

    console.get_by_role("button", name="Resolve", exact=True).click()
    expect(console.locator(".messagelist")).to_contain_text("done (resolve)")

    rating = customer.locator("#chat-status form.rating")
    expect(rating).to_be_visible()
    expect(rating).to_contain_text("How did we do?")
    expect(customer.locator("#chat-status")).to_contain_text("This conversation is resolved.")
    expect_same_document(customer)

    customer.locator("label[for=csat-4]").click()
    expect(customer.locator("#csat-4")).to_be_checked()
    customer.locator("#csat-comment").fill("Quick and friendly")
    customer.get_by_role("button", name="Send rating").click()
    expect(customer.locator("#chat-status")).to_contain_text("Thank you! You rated this conversation 4 out of 5.")

    ticket.refresh_from_db()
    assert (ticket.status, ticket.csat_score, ticket.csat_comment) == ("resolved", 4, "Quick and friendly")

    customer.reload()
    expect(customer.locator("#chat-status")).to_contain_text("Thank you! You rated this conversation 4 out of 5.")
    expect(customer.locator("form.rating")).to_have_count(0)


# --- 6. without JavaScript ------------------------------------------------------------------------------


def test_without_javascript_the_plain_form_post_starts_and_continues_the_conversation(new_context):
    page = new_context(java_script_enabled=False).new_page()
    ticket = start_conversation(page, "I have scripts turned off")

    send_as_customer(page, "Still there? Sent by a plain form post.")
    expect(page).to_have_url(re.compile(r"/chat/c/[^/]+/#msg-2$"))
    expect(thread(page)).to_have_count(2)
    expect(page.locator("#msg-2")).to_contain_text("Still there? Sent by a plain form post.")
    expect(page.locator("#msg-2")).to_contain_text("You")
    expect(page.locator("#body")).to_have_value("")

    stored = Message.objects.get(ticket=ticket, seq=2)
    assert (stored.author_kind, stored.body, stored.is_internal) == (
        "customer",
        "Still there? Sent by a plain form post.",
        False,
    )


# --- 7. Content Security Policy -------------------------------------------------------------------------

RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def watch_console(page: Page) -> tuple[list[str], list[str]]:
    console: list[str] = []
    errors: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    return console, errors


def expect_csp_header(response) -> None:
    assert response is not None
    assert response.ok, response.status
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, policy


def expect_no_csp_violation(page: Page, console: list[str], errors: list[str]) -> None:
    assert [m for m in console if "content security policy" in m.lower()] == []
    assert page.evaluate("window.__cspViolations") == []
    assert errors == []


def test_chat_and_console_pages_run_under_the_csp_without_violations(new_context):
    agent = make_live_agent()
    customer = new_context().new_page()
    customer_console, customer_errors = watch_console(customer)
    expect_csp_header(customer.goto("/chat/"))
    ticket = start_conversation(customer, "Checking the policy")
    expect_csp_header(customer.goto(customer.url))
    expect_connected(customer)

    console_context = new_context()
    console = console_context.new_page()
    agent_console, agent_errors = watch_console(console)
    open_ticket_as_agent(console_context, agent, ticket, page=console)
    expect_csp_header(console.goto(console.url))
    expect_connected(console)

    send_as_customer(customer, "A live message")
    expect(thread(console).filter(has_text="A live message")).to_have_count(1)
    reply_as_agent(console, "A *live* reply with a [link](https://example.com/help)")
    expect(thread(customer).filter(has_text="A live reply")).to_have_count(1)
    console.locator(REPLY_BOX).press_sequentially("typing", delay=20)
    customer.locator("#body").press_sequentially("typing", delay=20)

    expect_no_csp_violation(customer, customer_console, customer_errors)
    expect_no_csp_violation(console, agent_console, agent_errors)


# --- 8. phone ---------------------------------------------------------------------------------------------


def test_chat_fits_a_phone_screen(new_context):
    page = new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True).new_page()
    page.goto("/chat/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    start_conversation(page, "Hi from my phone")
    expect_connected(page)
    send_as_customer(page, "A long link: https://example.com/" + "a-very-long-path-segment" * 12)
    expect(thread(page)).to_have_count(2)

    composer = page.locator("#body")
    send = page.get_by_role("button", name="Send", exact=True)
    for element in (composer, send):
        expect(element).to_be_visible()
        element.scroll_into_view_if_needed()
        expect(element).to_be_in_viewport()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways: {width}px wide on a 375px screen"
