"""Names people give things in the console and read in lists (tags, saved views): one visible line, and
unique where they must be, with a clear error instead of an ``IntegrityError``."""

from __future__ import annotations

import unicodedata

from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext as _

from tickets.services.common import TicketRuleError


def name_clean(name: str, *, max_length: int, empty: str, too_long: str) -> str:
    """Spaces collapsed; ``empty`` or ``too_long`` (with ``%(max)d``) when it is blank or longer than
    ``max_length``; no control or invisible characters (a name that reads like another)."""
    name = " ".join(str(name).split())
    if not name:
        raise TicketRuleError(empty)
    if len(name) > max_length:
        raise TicketRuleError(too_long % {"max": max_length})
    if any(unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs") for char in name):
        raise TicketRuleError(_("A name cannot contain control or invisible characters."))
    return name


def save_named(instance: models.Model, *, same_name: models.QuerySet, taken: str) -> None:
    """Save ``instance`` unless another row of ``same_name`` (those its name would clash with) exists —
    also when another request saves that name in between (the unique constraint answers, as ``taken``)."""
    if same_name.exclude(pk=instance.pk).exists():
        raise TicketRuleError(taken)
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise TicketRuleError(taken) from exc
