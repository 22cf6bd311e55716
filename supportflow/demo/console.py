"""The console workflows' demo (``data/console.json``): tickets agents opened for customers who called,
came by or wrote to them directly, and one customer's duplicate tickets merged — another's left to merge
from the console. Everything through the services the console itself calls."""

from __future__ import annotations

from supportflow.demo.texts import CONSOLE
from tickets import services
from tickets.models import Department


def console_demo_load(*, users: dict, departments: dict[str, Department]) -> int:
    """Returns how many tickets it opened."""
    opened = 0
    for item in CONSOLE["opened_by_agents"]:
        services.ticket_open_for_customer(
            actor=users[item["opened_by"]],
            body=item["body"],
            channel=item["channel"],
            department=departments[item["department"]],
            customer_email=item["customer"].get("email", ""),
            customer_name=item["customer"]["name"],
            subject=item["subject"],
            priority=item["priority"],
            assign_to_me=item["assign"],
        )
        opened += 1
    for pair in CONSOLE["duplicates"]:
        customer = services.customer_get_or_create(**pair["customer"])
        kept, duplicate = (
            services.ticket_create(
                customer=customer,
                subject=t["subject"],
                body=t["body"],
                channel=t["channel"],
                department=departments[pair["department"]],
            )
            for t in pair["tickets"]
        )
        opened += 2
        if pair["merged_by"]:
            services.ticket_merge(primary=kept, secondary=duplicate, actor=users[pair["merged_by"]])
    return opened


def console_demo_tickets() -> int:
    """How many tickets ``console_demo_load`` opens."""
    return len(CONSOLE["opened_by_agents"]) + 2 * len(CONSOLE["duplicates"])
