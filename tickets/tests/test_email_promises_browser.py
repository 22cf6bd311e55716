"""The pages our emails link to, in a real browser (Chromium) on the live ASGI server: a customer clicks a score
in the CSAT survey that arrived at the SMTP server, adds a comment and sends it; then unsubscribes from the same
email's link."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tickets import services
from tickets.email import surveys
from tickets.models import Customer, Ticket
from tickets.tests import browser as harness
from tickets.tests.a11y import axe_violations, describe
from tickets.tests.factories import CustomerFactory
from tickets.tests.test_i18n_browser import in_another_process_like_thread

browser = harness.browser
asgi_server = harness.asgi_server
new_context = harness.new_context
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool

pytestmark = pytest.mark.django_db(transaction=True)
expect.set_options(timeout=10_000)


def test_a_customer_rates_from_the_survey_email_and_unsubscribes(
    new_context, asgi_server, smtp_server, email_settings, settings
):
    settings.SITE_URL = asgi_server.url

    def resolved_and_surveyed() -> None:
        customer = CustomerFactory(email="ada@example.com", name="Ada")
        ticket = services.ticket_create(customer=customer, subject="Invoice is wrong", body="x", channel="email")
        services.ticket_resolve(ticket=ticket)
        assert surveys.csat_survey_send(ticket_id=ticket.pk) == "sent"

    in_another_process_like_thread(resolved_and_surveyed)
    [mail] = smtp_server.wait_for(1)
    link = re.search(rf"{re.escape(asgi_server.url)}(/email/rate/\S+/\?score=3)", mail.get_content()).group(1)

    page = new_context().new_page()
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("How did we do?")
    expect(page.locator("#csat-3")).to_be_checked()  # the score clicked in the email, nothing recorded yet
    found = {"rating page": axe_violations(page)}
    assert Ticket.objects.get().csat_score is None
    page.get_by_label("Anything to add? (optional)").fill("Took <b>two</b> days")
    page.get_by_role("button", name="Send rating").click()
    expect(page.get_by_role("status")).to_have_text("Thank you! You rated this conversation 3 out of 5.")
    ticket = Ticket.objects.get()
    assert (ticket.csat_score, ticket.csat_comment) == (3, "Took <b>two</b> days")

    page.goto(urlsplit(mail["List-Unsubscribe"].strip().strip("<>")).path)
    found["unsubscribe page"] = axe_violations(page)
    found = {where: violations for where, violations in found.items() if violations}
    assert not found, "axe-core found serious or critical violations:\n" + describe(found)
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("status")).to_contain_text("You are unsubscribed: ada@example.com gets no more")
    assert Customer.objects.get(email="ada@example.com").email_unsubscribed_at is not None
    page.get_by_role("button", name="Subscribe again").click()
    expect(page.get_by_role("button", name="Unsubscribe")).to_be_visible()
    assert Customer.objects.get(email="ada@example.com").email_unsubscribed_at is None
