"""Writes to the AI's configuration versions and experiments (``tickets.ai.versions`` reads them).

Managers only: every service checks the role itself (the console and the analytics page both call
here) and writes a ``LogEntry`` — the console's history of the object says who changed what. A version
is never edited once it exists (every ``AIRun`` names the version it used); a change is a new version.
Each write tells every process to re-read the versions on commit (``ai_config.invalidate``).
"""

from __future__ import annotations

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from tickets import ai_config
from tickets.models import AIConfigVersion, AIExperiment
from tickets.roles import user_is_manager
from tickets.services.common import TicketRuleError

Version = AIConfigVersion.Status
Experiment = AIExperiment.Status


def _require_manager(user: AbstractBaseUser | None) -> None:
    if not user_is_manager(user):
        raise PermissionError("Only managers change the AI's configuration.")


def _audit(user: AbstractBaseUser, obj, flag: int, message: str) -> None:
    model = type(obj)
    LogEntry.objects.log_actions(
        user_id=user.pk, queryset=model.objects.filter(pk=obj.pk), action_flag=flag, change_message=message
    )


def _changed() -> None:
    transaction.on_commit(ai_config.invalidate)


@transaction.atomic
def ai_config_version_create(
    *,
    user: AbstractBaseUser,
    label: str,
    triage_prompt: str,
    reply_prompt: str,
    model_triage: str = "",
    model_reply: str = "",
    confidence_threshold: float | None = None,
    notes: str = "",
) -> AIConfigVersion:
    """A new draft version. Raises ``TicketRuleError`` when a prompt's placeholders would break the
    pipeline (``ai_config.prompt_problems``) or the label is taken."""
    _require_manager(user)
    label = label.strip()
    if not label:
        raise TicketRuleError(gettext("A version needs a label."))
    for field, text in (("triage_prompt", triage_prompt), ("reply_prompt", reply_prompt)):
        problems = ai_config.prompt_problems(field, text)
        if problems:
            raise TicketRuleError(
                gettext("The %(field)s cannot be used: %(problems)s.")
                % {"field": AIConfigVersion._meta.get_field(field).verbose_name, "problems": "; ".join(problems)}
            )
    if confidence_threshold is not None and not 0.0 <= confidence_threshold <= 1.01:
        raise TicketRuleError(gettext("The confidence threshold must be between 0 and 1.01."))
    if AIConfigVersion.objects.filter(label=label).exists():
        raise TicketRuleError(gettext("A version labelled “%(label)s” exists already.") % {"label": label})
    version = AIConfigVersion.objects.create(
        label=label,
        triage_prompt=triage_prompt,
        reply_prompt=reply_prompt,
        model_triage=model_triage.strip(),
        model_reply=model_reply.strip(),
        confidence_threshold=confidence_threshold,
        notes=notes,
        created_by=user,
    )
    _audit(user, version, ADDITION, f"Created version {label}.")
    return version


def _activate(version: AIConfigVersion) -> None:
    AIConfigVersion.objects.filter(status=Version.ACTIVE).exclude(pk=version.pk).update(status=Version.RETIRED)
    AIConfigVersion.objects.filter(pk=version.pk).update(status=Version.ACTIVE)
    version.status = Version.ACTIVE


@transaction.atomic
def ai_config_version_activate(*, user: AbstractBaseUser, version: AIConfigVersion) -> AIConfigVersion:
    """Make ``version`` the one that serves every conversation outside a running experiment; the
    previously active one is retired (activate it again to roll back)."""
    _require_manager(user)
    previous = AIConfigVersion.objects.select_for_update().filter(status=Version.ACTIVE).first()
    if previous is not None and previous.pk == version.pk:
        return version
    _activate(version)
    _audit(user, version, CHANGE, f"Activated (was {previous.label if previous else 'none'}).")
    _changed()
    return version


@transaction.atomic
def ai_experiment_create(
    *,
    user: AbstractBaseUser,
    name: str,
    version_a: AIConfigVersion,
    version_b: AIConfigVersion,
    share_b: int = 50,
) -> AIExperiment:
    _require_manager(user)
    if version_a.pk == version_b.pk:
        raise TicketRuleError(gettext("An experiment compares two different versions."))
    if not 1 <= share_b <= 99:
        raise TicketRuleError(gettext("The share of conversations on B must be between 1 and 99 %."))
    if not name.strip():
        raise TicketRuleError(gettext("An experiment needs a name."))
    experiment = AIExperiment.objects.create(
        name=name.strip(), version_a=version_a, version_b=version_b, share_b=share_b, created_by=user
    )
    _audit(user, experiment, ADDITION, f"Created: A={version_a.label}, B={version_b.label}, {share_b} % on B.")
    return experiment


@transaction.atomic
def ai_experiment_start(*, user: AbstractBaseUser, experiment: AIExperiment) -> AIExperiment:
    """Start splitting new messages between the arms. Only a draft starts, and only one runs at a time
    (a unique constraint, so two managers starting two experiments at once cannot both win)."""
    _require_manager(user)
    try:
        with transaction.atomic():
            started = AIExperiment.objects.filter(pk=experiment.pk, status=Experiment.DRAFT).update(
                status=Experiment.RUNNING, started_at=timezone.now()
            )
    except IntegrityError:
        raise TicketRuleError(gettext("Another experiment is running; stop it first.")) from None
    if not started:
        raise TicketRuleError(gettext("Only a draft experiment can be started."))
    experiment.refresh_from_db()
    _audit(user, experiment, CHANGE, "Started.")
    _changed()
    return experiment


@transaction.atomic
def ai_experiment_stop(
    *, user: AbstractBaseUser, experiment: AIExperiment, winner: AIConfigVersion | None = None
) -> AIExperiment:
    """End the experiment; with ``winner`` (one of its arms), that version becomes the active one.

    A running experiment ends here; an ended one without a winner may still be promoted afterwards
    (its figures stay on the AI page)."""
    _require_manager(user)
    experiment = AIExperiment.objects.select_for_update().get(pk=experiment.pk)
    if winner is not None and winner.pk not in (experiment.version_a_id, experiment.version_b_id):
        raise TicketRuleError(gettext("The winner must be one of the experiment's two versions."))
    if experiment.status == Experiment.DRAFT or (experiment.status == Experiment.ENDED and winner is None):
        raise TicketRuleError(gettext("This experiment is not running."))
    if experiment.winner_id is not None:
        raise TicketRuleError(gettext("This experiment was promoted already."))
    if experiment.status == Experiment.RUNNING:
        experiment.status, experiment.ended_at, experiment.ended_by = Experiment.ENDED, timezone.now(), user
    if winner is not None:
        _activate(winner)
        experiment.winner = winner
        _audit(user, winner, CHANGE, f"Activated: promoted from experiment “{experiment.name}”.")
    experiment.save(update_fields=["status", "ended_at", "ended_by", "winner"])
    _audit(user, experiment, CHANGE, f"Promoted {winner.label}." if winner else "Stopped.")
    _changed()
    return experiment


def ai_experiment_promote(*, user: AbstractBaseUser, experiment: AIExperiment, arm: str) -> AIExperiment:
    """The winning arm (``"A"`` or ``"B"``) becomes the active version and the experiment ends."""
    if arm not in ("A", "B"):
        raise TicketRuleError(gettext("Choose arm A or B."))
    winner = experiment.version_a if arm == "A" else experiment.version_b
    return ai_experiment_stop(user=user, experiment=experiment, winner=winner)
