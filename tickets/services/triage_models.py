"""Which local triage model version is active: the registry's writes (promote, roll back), shared by the
AI wing's promotion gate (``tickets/ai/triage/registry.py``) and the managers' console buttons.

A change of the active version bumps ``TriageModel.GENERATION_CACHE_KEY`` on commit, so every worker
process re-reads the active version at its next prediction (``tickets/ai/triage/local.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from supportflow import generations
from tickets.models import TriageModel
from tickets.services.common import TicketRuleError

logger = logging.getLogger(__name__)


def triage_model_announce() -> None:
    """Tell every process to re-read the active version at its next prediction (a cache outage does not
    undo a promotion: processes still re-check every 30 s)."""
    generations.bump(TriageModel.GENERATION_CACHE_KEY)


@transaction.atomic
def triage_model_activate(
    *,
    row: TriageModel,
    reason: str,
    expected_active: TriageModel | None,
    previous_status: str = TriageModel.Status.RETIRED,
) -> TriageModel:
    """Make ``row`` the active version if ``expected_active`` still is (compare-and-set under a row lock:
    two retrains or two managers cannot both win); the old one gets ``previous_status``."""
    current = TriageModel.objects.select_for_update().filter(is_active=True).first()
    if (current and current.pk) != (expected_active and expected_active.pk):
        raise TicketRuleError(gettext("Not promoted: the active version changed meanwhile; try again."))
    now = timezone.now()
    if current is not None:
        verb = "Rolled back" if previous_status == TriageModel.Status.REJECTED else "Retired"
        current.is_active, current.status = False, previous_status
        current.reason = f"{verb}: v{row.version} is active since {now:%Y-%m-%d %H:%M} UTC."
        current.save(update_fields=["is_active", "status", "reason"])
    row.is_active, row.status, row.reason, row.activated_at = True, TriageModel.Status.ACTIVE, reason, now
    row.save(update_fields=["is_active", "status", "reason", "activated_at"])
    transaction.on_commit(triage_model_announce)
    return row


def _audit(user: AbstractBaseUser, rows: Sequence[TriageModel], message: str) -> None:
    LogEntry.objects.log_actions(user_id=user.pk, queryset=rows, action_flag=CHANGE, change_message=message)


def triage_model_promote(*, user: AbstractBaseUser, version_id: int) -> TriageModel:
    """Make a stored version active by hand (a candidate, a rejected or a retired one), audited in the
    admin's log. The caller checked that ``user`` is a manager."""
    row = TriageModel.objects.defer("weights").filter(pk=version_id).first()
    if row is None:
        raise TicketRuleError(gettext("No such triage model version."))
    if row.is_active:
        raise TicketRuleError(gettext("v%(version)s is already active.") % {"version": row.version})
    if row.embedding_model != settings.EMBEDDING_MODEL:
        raise TicketRuleError(
            gettext("v%(version)s was trained on %(theirs)s embeddings, not %(ours)s: retrain instead.")
            % {"version": row.version, "theirs": row.embedding_model, "ours": settings.EMBEDDING_MODEL}
        )
    active = TriageModel.objects.defer("weights").filter(is_active=True).first()
    with transaction.atomic():
        row = triage_model_activate(row=row, reason=f"Promoted by {user} (was {row.status}).", expected_active=active)
        _audit(user, [row], f"Promoted v{row.version}" + (f", replacing v{active.version}." if active else "."))
    return row


def triage_model_rollback(*, user: AbstractBaseUser) -> TriageModel:
    """Go back to the version that was active before the current one (the latest retired version on the
    same embeddings), audited; the current one is marked rejected, so a second rollback goes further back."""
    active = TriageModel.objects.defer("weights").filter(is_active=True).first()
    if active is None:
        raise TicketRuleError(gettext("No version is active: nothing to roll back."))
    previous = (
        TriageModel.objects.defer("weights")
        .filter(status=TriageModel.Status.RETIRED, activated_at__isnull=False, embedding_model=settings.EMBEDDING_MODEL)
        .exclude(pk=active.pk)
        .order_by("-activated_at", "-version")
        .first()
    )
    if previous is None:
        raise TicketRuleError(
            gettext("No earlier version to roll back to from v%(version)s.") % {"version": active.version}
        )
    with transaction.atomic():
        row = triage_model_activate(
            row=previous,
            reason=f"Rolled back to by {user} from v{active.version}.",
            expected_active=active,
            previous_status=TriageModel.Status.REJECTED,
        )
        _audit(user, [row, active], f"Rolled back from v{active.version} to v{row.version}.")
    return row
