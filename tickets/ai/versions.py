"""Which configuration version (prompts, threshold, model names) serves a conversation.

The active ``AIConfigVersion`` serves every ticket, except while an ``AIExperiment`` runs: then a stable
hash of the experiment and the ticket id puts ``share_b`` % of the conversations on version B and the
rest on version A, so a conversation keeps its arm for every message, on every worker.

Read on every customer message, so the rows are kept per process and re-read only when the
generation stamp in the shared cache changes: the services that change a version or an experiment
(``tickets.services.ai_versions``) set a new stamp, and every process sees it on its next message. With
no row at all (a database emptied by a test) the built-in prompts serve, recorded as no version.

The same copy holds the rest of what the gate reads on every message and a person rarely changes: the
active escalation rules and the knowledge base's calibrated thresholds (two queries a message fewer, in a
worker whose database work is a third of its CPU). Saving or deleting either sets a new stamp
(``tickets.apps``); what a signal cannot see (a migration's or a queryset's ``update()``) is picked up
within ``MAX_AGE_S``, the longest a process keeps its copy without re-reading.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field, replace

from django.conf import settings

from tickets import ai_config
from tickets.models import AIConfigVersion, AIExperiment, EscalationRule, KnowledgeCalibration

BUCKETS = 100
MAX_AGE_S = 60.0


@dataclass(frozen=True)
class Config:
    """A version as the pipeline uses it: prompts, models (resolved from settings when blank), threshold."""

    pk: int | None
    label: str
    triage_prompt: str
    reply_prompt: str
    model_triage: str
    model_reply: str
    threshold: float | None
    experiment_id: int | None = None
    arm: str = ""


def builtin() -> Config:
    """The prompts in code and the deployment's models: what serves when no version row exists."""
    from tickets.ai.answer import REPLY_SYSTEM_PROMPT
    from tickets.ai.triage.prompt import TRIAGE_SYSTEM_PROMPT

    return Config(
        pk=None,
        label="",
        triage_prompt=TRIAGE_SYSTEM_PROMPT,
        reply_prompt=REPLY_SYSTEM_PROMPT,
        model_triage=settings.LLM_MODEL_TRIAGE,
        model_reply=settings.LLM_MODEL_REPLY,
        threshold=None,
    )


def _config(version: AIConfigVersion) -> Config:
    return Config(
        pk=version.pk,
        label=version.label,
        triage_prompt=version.triage_prompt,
        reply_prompt=version.reply_prompt,
        model_triage=version.model_triage or settings.LLM_MODEL_TRIAGE,
        model_reply=version.model_reply or settings.LLM_MODEL_REPLY,
        threshold=version.confidence_threshold,
    )


@dataclass(frozen=True)
class Snapshot:
    """The AI's configuration as one message reads it (``snapshot()``): the versions, the escalation rules
    and the calibrated thresholds, from one generation."""

    active: Config
    experiment_id: int | None = None
    share_b: int = 0
    a: Config | None = None
    b: Config | None = None
    rules: tuple[EscalationRule, ...] = ()  # the active ones, in order (``tickets.ai.rules.evaluate``)
    calibrated: dict[str, float] = field(default_factory=dict)  # namespace → the knowledge base's threshold
    loaded_at: float = 0.0

    def config_for(self, ticket_id: int) -> Config:
        """The version serving this conversation: its experiment arm while one runs, else the active one."""
        if self.experiment_id is None:
            return self.active
        arm = arm_for(experiment_id=self.experiment_id, share_b=self.share_b, ticket_id=ticket_id)
        chosen = self.b if arm == "B" else self.a
        return replace(chosen, experiment_id=self.experiment_id, arm=arm)


_lock = threading.Lock()
_cached: tuple[str, Snapshot] | None = None


def _load() -> Snapshot:
    active = AIConfigVersion.objects.filter(status=AIConfigVersion.Status.ACTIVE).first()
    base = _config(active) if active else builtin()
    experiment = (
        AIExperiment.objects.filter(status=AIExperiment.Status.RUNNING).select_related("version_a", "version_b").first()
    )
    gate = {
        "rules": tuple(EscalationRule.objects.filter(is_active=True).order_by("order", "pk")),
        "calibrated": dict(KnowledgeCalibration.objects.values_list("namespace", "threshold")),  # one per namespace
        "loaded_at": time.monotonic(),
    }
    if experiment is None:
        return Snapshot(active=base, **gate)
    return Snapshot(
        active=base,
        experiment_id=experiment.pk,
        share_b=experiment.share_b,
        a=_config(experiment.version_a),
        b=_config(experiment.version_b),
        **gate,
    )


def snapshot() -> Snapshot:
    """The process's copy while the stamp is unchanged and younger than ``MAX_AGE_S``, else re-read."""
    global _cached
    generation = ai_config.generation()
    with _lock:
        if (
            generation is not None
            and _cached is not None
            and _cached[0] == generation
            and time.monotonic() - _cached[1].loaded_at < MAX_AGE_S
        ):
            return _cached[1]
    loaded = _load()
    if generation is not None:
        with _lock:
            _cached = (generation, loaded)
    return loaded


def bucket(experiment_id: int, ticket_id: int) -> int:
    """0–99, the same for a ticket on every process and every run (not Python's salted ``hash``)."""
    digest = hashlib.sha256(f"ai-experiment:{experiment_id}:ticket:{ticket_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def arm_for(*, experiment_id: int, share_b: int, ticket_id: int) -> str:
    return "B" if bucket(experiment_id, ticket_id) < share_b else "A"


def config_for_ticket(ticket_id: int) -> Config:
    """The version serving this conversation: its experiment arm while one runs, else the active one."""
    return snapshot().config_for(ticket_id)
