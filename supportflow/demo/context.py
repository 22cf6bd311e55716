"""What the simulated history starts from: the queues, SLA targets, agents, escalation rules, triage model
and demo articles already in the database (``seed_demo`` loads them), read once per run."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from supportflow.demo.ai import CATEGORY_DEPARTMENT
from tickets import sla
from tickets.models import AgentProfile, Department, EscalationRule, TriageModel


@dataclass
class Queue:
    id: int
    slug: str
    name: str
    threshold: float
    auto_reply: bool
    calendar: sla.BusinessCalendar | None
    targets: dict[str, tuple[int, int]]  # priority -> (first response, resolution) minutes
    agents: list[tuple[int, str]] = field(default_factory=list)
    agent_weights: list[float] = field(default_factory=list)


@dataclass
class Rule:
    name: str
    condition: str
    value: str
    reason: str
    set_priority: str


@dataclass
class Context:
    departments: dict[str, Queue]
    by_category: dict[str, str]  # category -> department slug (present ones only)
    floaters: list[tuple[int, str]]  # who picks up unrouted tickets (managers first)
    articles: dict[str, dict]  # slug -> citation
    rules: list[Rule]
    model_version: int
    auto_close_days: int


def load_context() -> Context:
    from knowledge.models import DEFAULT_NAMESPACE, Article, Chunk

    departments: dict[str, Queue] = {}
    for dep in (
        Department.objects.filter(is_active=True).select_related("sla_policy").prefetch_related("sla_policy__targets")
    ):
        policy = dep.sla_policy
        targets = (
            {t.priority: (t.first_response_minutes, t.resolution_minutes) for t in policy.targets.all()}
            if policy
            else {}
        )
        departments[dep.slug] = Queue(
            id=dep.pk,
            slug=dep.slug,
            name=dep.name,
            threshold=dep.ai_confidence_threshold,
            auto_reply=dep.ai_auto_reply,
            calendar=sla.BusinessCalendar.from_policy(policy),
            targets=targets,
        )
    if not departments:
        raise RuntimeError("No departments: run `manage.py seed_demo` (or create queues) before generating load.")
    floaters: list[tuple[int, str, bool]] = []
    profiles = (
        AgentProfile.objects.filter(user__is_active=True, user__is_staff=True)
        .select_related("user")
        .prefetch_related("departments", "user__groups")
        .order_by("user__username")
    )
    for profile in profiles:
        user = profile.user
        is_manager = any(g.name == "Managers" for g in user.groups.all())
        weight = 0.4 if is_manager else 1.0
        for dep in profile.departments.all():
            if dep.slug in departments:
                departments[dep.slug].agents.append((user.pk, user.get_username()))
                departments[dep.slug].agent_weights.append(weight)
        floaters.append((user.pk, user.get_username(), is_manager))
    floaters.sort(key=lambda f: (not f[2], f[1]))
    if not floaters:
        raise RuntimeError("No agents: run `manage.py seed_demo` (or add agent profiles) before generating load.")
    by_category = {c: d for c, d in CATEGORY_DEPARTMENT.items() if d in departments}
    fallback = sorted(departments)
    for i, category in enumerate(sorted(CATEGORY_DEPARTMENT)):
        by_category.setdefault(category, fallback[i % len(fallback)])

    articles: dict[str, dict] = {}
    first_chunks = {
        a: (c, end)
        for a, c, end in Chunk.objects.filter(position=0, namespace=DEFAULT_NAMESPACE).values_list(
            "article_id", "pk", "char_end"
        )
    }
    for pk, slug, title in Article.objects.filter(
        namespace=DEFAULT_NAMESPACE, status=Article.Status.PUBLISHED
    ).values_list("pk", "slug", "title"):
        chunk_id, char_end = first_chunks.get(pk, (None, 0))
        articles[slug] = {
            "title": title,
            "url": f"/help/articles/{slug}/",
            "chunk_id": chunk_id,
            "article_id": pk,
            "heading_path": "",
            "char_start": 0,
            "char_end": char_end,
        }
    rules = [
        Rule(r.name, r.condition, r.value.strip().lower(), r.reason, r.set_priority)
        for r in EscalationRule.objects.filter(is_active=True).order_by("order", "pk")
    ]
    active = TriageModel.objects.filter(is_active=True).values_list("version", flat=True).first()
    return Context(
        departments=departments,
        by_category=by_category,
        floaters=[(pk, name) for pk, name, _ in floaters],
        articles=articles,
        rules=rules,
        model_version=active or 1,
        auto_close_days=getattr(settings, "AUTO_CLOSE_RESOLVED_DAYS", 7),
    )
