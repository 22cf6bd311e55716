"""Tags on tickets: add and remove (each a ``TicketEvent``), and the tags themselves (name, colour).

Adding by name creates the tag the first time (names are unique whatever their case), so an agent, a macro
or a rule tags the same way. A change reaches the other agents on the ticket page over its socket (a
placeholder that reloads the tags with each agent's own rights) and webhooks as ``ticket.updated``.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from tickets import events, realtime
from tickets.models import Tag, Ticket, TicketEvent
from tickets.models.inbox import colour_validator
from tickets.services.common import TicketRuleError, _actor_kind, _event, _locked
from tickets.services.names import name_clean, save_named

TAG_NAME_MAX_LENGTH = 40
TAGS_PER_TICKET_MAX = 20
# Picked by the name for a tag made from the ticket page; a manager can change it in the tag admin.
PALETTE = ("#2563eb", "#059669", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#4b5563")


def tag_name_clean(name: str) -> str:
    return name_clean(
        name,
        max_length=TAG_NAME_MAX_LENGTH,
        empty=_("Give the tag a name."),
        too_long=_("A tag name has at most %(max)d characters."),
    )


def tag_get_or_create(*, name: str) -> Tag:
    """The tag of that name whatever its case, created with a palette colour if there is none yet."""
    name = tag_name_clean(name)
    colour = PALETTE[hashlib.sha256(name.lower().encode()).digest()[0] % len(PALETTE)]
    tag, _created = Tag.objects.get_or_create(name__iexact=name, defaults={"name": name, "colour": colour})
    return tag


def tag_save(*, tag: Tag, name: str, colour: str) -> Tag:
    """Create, rename or recolour a tag (the tag admin). Every ticket carrying it shows the new name."""
    tag.name = tag_name_clean(name)
    try:
        colour_validator(colour)
    except ValidationError as exc:
        raise TicketRuleError(exc.messages[0]) from exc
    tag.colour = colour
    taken = _("There is already a tag called “%(name)s”.") % {"name": tag.name}
    save_named(tag, same_name=Tag.objects.filter(name__iexact=tag.name), taken=taken)
    return tag


@transaction.atomic
def ticket_tag_add(*, ticket: Ticket, name: str, actor: AbstractBaseUser | None = None) -> Tag:
    """Put the tag called ``name`` on the ticket (a no-op, without an event, when it is already there)."""
    tag = tag_get_or_create(name=name)
    ticket = _locked(ticket)
    present = set(ticket.tags.values_list("pk", flat=True))
    if tag.pk in present:
        return tag
    if len(present) >= TAGS_PER_TICKET_MAX:
        raise TicketRuleError(_("A ticket has at most %(max)d tags.") % {"max": TAGS_PER_TICKET_MAX})
    ticket.tags.add(tag)
    _tags_changed(ticket, TicketEvent.Kind.TAG_ADDED, actor=actor, to_value=tag.name)
    return tag


@transaction.atomic
def ticket_tag_remove(*, ticket: Ticket, tag: Tag, actor: AbstractBaseUser | None = None) -> bool:
    """Take the tag off the ticket; ``False`` (and no event) when it was not on it."""
    ticket = _locked(ticket)
    removed, _counts = Tag.tickets.through.objects.filter(ticket_id=ticket.pk, tag_id=tag.pk).delete()
    if not removed:
        return False
    _tags_changed(ticket, TicketEvent.Kind.TAG_REMOVED, actor=actor, from_value=tag.name)
    return True


@transaction.atomic
def tag_delete(*, tag: Tag, actor: AbstractBaseUser | None = None) -> int:
    """Delete a tag (the tag admin): every ticket that carried it records the removal. Returns how many."""
    tag = Tag.objects.select_for_update().get(pk=tag.pk)
    ticket_ids = list(tag.tickets.order_by("pk").values_list("pk", flat=True))
    TicketEvent.objects.bulk_create(
        TicketEvent(
            ticket_id=ticket_id,
            kind=TicketEvent.Kind.TAG_REMOVED,
            field="tags",
            from_value=tag.name,
            note=_("The tag was deleted."),
            actor=actor,
            actor_kind=_actor_kind(actor),
        )
        for ticket_id in ticket_ids
    )
    tag.delete()
    return len(ticket_ids)


def _tags_changed(ticket: Ticket, kind: str, *, actor: AbstractBaseUser | None, **values: str) -> None:
    ticket.save(update_fields=["updated_at"])  # an open ticket list counts it as changed
    _event(ticket, kind, actor=actor, field="tags", **values)
    events.publish(events.TICKET_UPDATED, ticket_id=ticket.pk, fields=["tags"])
    realtime.broadcast_on_commit(broadcast_tags, ticket.pk)


def broadcast_tags(ticket_id: int) -> None:
    """Agents on the ticket page reload its tags: only a placeholder goes over the socket, so each agent
    gets the tags form with their own rights and CSRF token (as the AI panel does)."""
    url = reverse("admin:tickets_ticket_tags", args=[ticket_id])
    html = (
        f'<section id="sf-tags" class="sf-tags" hx-swap-oob="true" hx-get="{url}" hx-trigger="load" '
        'hx-swap="outerHTML"></section>'
    )
    realtime.send_html((realtime.agent_audience(ticket_id), html))
