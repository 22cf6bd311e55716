"""The screenshots in docs/console.md (``manage.py console_screenshots``): each page of the agent workspace and
the analytics overview in the light and the dark theme, the customer's chat and help center (one look), taken
by headless Chromium at 1400x900 from the demo data, on the real ASGI app served from this process.

Playwright and the uvicorn-in-a-thread harness are development dependencies: imported only when this runs.
Signing in uses Django's own session login (``Client.force_login``) for the demo agent and manager, so the
random demo passwords are not needed. All database reads happen before the browser starts: Playwright's sync
API marks the main thread's loop as running, which Django's async-safety check would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count

VIEWPORT = {"width": 1400, "height": 900}
THEMES = ("light", "dark")
AGENT, MANAGER = "alice", "maria"
SHOT_NAMES = ("inbox", "ticket", "macros", "shortcuts", "chat", "help-center", "analytics")


@dataclass(frozen=True)
class Shot:
    name: str  # docs/img/console-<name>-<theme>.png
    user: str | None  # who is signed in; None: a customer
    path: str
    action: Callable | None = None  # what to do on the page before the picture

    @property
    def themes(self) -> tuple[str, ...]:
        """The customer's pages have one light look (chat.css): one picture, not two identical ones."""
        return THEMES if self.user else ("light",)


def _open_macro_picker(page) -> None:
    page.locator("#sf-reply textarea[name=body]").click()
    page.keyboard.type("/")
    page.get_by_role("listbox", name="Macros").wait_for(state="visible")


def _open_shortcuts(page) -> None:
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("?")
    page.get_by_role("dialog", name="Keyboard shortcuts").wait_for(state="visible")


def _shots() -> list[Shot]:
    """The pages to photograph, on the richest demo ticket the agent can work (most messages, still open)."""
    from tickets.models import Ticket
    from tickets.selectors import ticket_customer_token, ticket_queryset_for_user

    agent = get_user_model().objects.get(username=AGENT)
    ticket = (
        ticket_queryset_for_user(user=agent)
        .filter(status__in=Ticket.ACTIVE_STATUSES)
        .annotate(n=Count("messages"))
        .order_by("-n", "pk")
        .first()
    )
    if ticket is None:
        raise RuntimeError("No open demo ticket for the demo agent: run seed_demo first.")
    change = f"/admin/tickets/ticket/{ticket.pk}/change/"
    return [
        Shot("inbox", AGENT, "/admin/tickets/ticket/?view=open"),
        Shot("ticket", AGENT, change),
        Shot("macros", AGENT, change, _open_macro_picker),
        Shot("shortcuts", AGENT, change, _open_shortcuts),
        Shot("chat", None, f"/chat/c/{ticket_customer_token(ticket=ticket)}/"),
        Shot("help-center", None, "/help/"),
        Shot("analytics", MANAGER, "/analytics/"),
    ]


def _session_cookies(base_url: str) -> dict[str | None, list[dict]]:
    from django.test import Client

    cookies: dict[str | None, list[dict]] = {None: []}
    for username in (AGENT, MANAGER):
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        value = client.cookies[settings.SESSION_COOKIE_NAME].value
        cookies[username] = [{"name": settings.SESSION_COOKIE_NAME, "value": value, "url": base_url}]
    return cookies


def console_screenshots(*, out_dir: Path, only: set[str] | None = None, write: Callable[[str], None]) -> list[Path]:
    """Take the screenshots into ``out_dir``; returns the files written. Preconditions: the demo data is
    loaded (``seed_demo``) and the database and Redis are reachable (``devservices manage`` sees to both)."""
    from playwright.sync_api import sync_playwright

    from tickets.tests.browser import CHROMIUM, CHROMIUM_ARGS, LiveServer

    shots = [shot for shot in _shots() if not only or shot.name in only]
    server = LiveServer()
    server.start()
    cookies = _session_cookies(server.url)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for theme in THEMES:
                for shot in (shot for shot in shots if theme in shot.themes):
                    context = chromium.new_context(base_url=server.url, viewport=VIEWPORT, color_scheme=theme)
                    context.add_init_script(  # the theme, and the admin's app list folded as an agent keeps it
                        f"localStorage.setItem('theme', {theme!r});"
                        "localStorage.setItem('django.admin.navSidebarIsOpen', 'false');"
                    )
                    context.add_cookies(cookies[shot.user])
                    page = context.new_page()
                    page.goto(shot.path, wait_until="networkidle")
                    if "/login/" in page.url:
                        raise RuntimeError(f"{shot.user} could not sign in for {shot.path}: is the demo data loaded?")
                    if shot.action:
                        shot.action(page)
                    path = out_dir / f"console-{shot.name}{f'-{theme}' if shot.user else ''}.png"
                    page.screenshot(path=str(path), animations="disabled", caret="hide")
                    context.close()
                    written.append(path)
                    write(f"{path} ({path.stat().st_size // 1024} KB)")
            chromium.close()
    finally:
        server.stop()
    return written
