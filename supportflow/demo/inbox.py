"""The demo's inbox (``data/inbox.json``): tags on the demo conversations and two saved views — a personal
one of Alice's and one Maria (a manager) shares with Technical Support. Everything goes through the
services, so each ticket's audit log shows who tagged it."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from supportflow.demo.texts import DATA_DIR
from tickets.models import Department, Tag, Ticket
from tickets.services.saved_views import saved_view_create
from tickets.services.tags import tag_save, ticket_tag_add


def inbox_demo_load(*, users: dict, departments: dict[str, Department]) -> None:
    """``users`` by username and ``departments`` by slug, as ``seed.demo_load`` made them."""
    data = json.loads((DATA_DIR / "inbox.json").read_text(encoding="utf-8"))
    tags = {tag["name"]: tag_save(tag=Tag(), name=tag["name"], colour=tag["colour"]) for tag in data["tags"]}
    for subject, names in data["ticket_tags"].items():
        ticket = Ticket.objects.filter(subject=subject).order_by("pk").first()
        for name in names:
            ticket_tag_add(ticket=ticket, name=name, actor=ticket.assignee or users[data["tagged_by"]])
    for view in data["saved_views"]:
        filters = {**view["filters"]}
        if "tag" in filters:
            filters["tag"] = tags[filters["tag"]].pk
        saved_view_create(
            owner=users[view["owner"]],
            name=view["name"],
            query=urlencode(filters),
            department=departments[view["shared_with"]] if view["shared_with"] else None,
        )
