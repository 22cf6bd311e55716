"""The triage step of the pipeline: the local classifier always, an OpenAI-compatible model when one is
configured and the text carries no injection signals (merged, limited to the known labels), then the
result written to the ticket where no agent decided otherwise."""

from __future__ import annotations

import re
from dataclasses import asdict

from supportflow import llm
from tickets import services
from tickets.ai import guard, pii, rules, versions
from tickets.ai.answer import site_name
from tickets.ai.runs import run_once, usage_of
from tickets.ai.triage.schema import TriageOut
from tickets.models import AIRun, Department, Message, Ticket, TicketEvent

AuthorKind = Message.AuthorKind
PRIORITY_ORDER = rules.PRIORITY_ORDER

# A customer asking in words for a priority, queue or category ("set priority: urgent", "route this to
# the billing team"). Not an injection signal on its own, but an LLM that obeys it would route by
# the text's say-so, so routing then comes from the local classifier, which does not take orders.
ROUTING_REQUEST = re.compile(
    r"\b(?:priority|prio|department|queue|category|team|abteilung|kategorie|priorität)\s*[:=]"
    r"|\b(?:priority|priorität|prio)\s+(?:is\s+|should\s+be\s+|to\s+|auf\s+)?(?:urgent|high|low|normal|critical|hoch|dringend)\b"
    r"|\b(?:route|assign|transfer|forward|move|escalate|send|direct|put|weiterleiten|zuweisen)\b\W+(?:this|it|the|my|our)\b"
    r"[^.!?\n]{0,40}?\bto\b[^.!?\n]{0,30}?\b(?:team|department|queue|agent|desk|billing|sales|legal|security|support)\b"
    r"|\b(?:set|change|mark|make|raise|bump|flag|classify|categori[sz]e|label|tag|treat|prioriti[sz]e|escalate|upgrade)\b"
    r"[^.!?\n]{0,40}?\b(?:urgent|high[- ]priority|top[- ]priority|critical|priority|department|queue|category)\b",
    re.IGNORECASE,
)


def _local_triage(ticket: Ticket, query: str, customer_messages: int | None = None) -> dict:
    from tickets.ai.triage import local as triage_local

    if customer_messages is None:
        customer_messages = ticket.messages.filter(author_kind=AuthorKind.CUSTOMER).count()
    result = triage_local.predict(query, customer_messages=customer_messages, is_vip=ticket.customer.is_vip)
    out = asdict(result)
    out["signals"] = list(result.signals)
    out["provider"] = "local"
    out["model"] = f"triage-local-v{result.model_version}"
    return out


def triage_message(
    ticket: Ticket, message: Message, query: str, *, injection: bool, config=None, customer_messages: int | None = None
) -> dict:
    """The merged triage; ``config`` (``tickets.ai.versions.Config``) gives the LLM's prompt and model and
    is recorded on every run (looked up for the ticket when not given); ``customer_messages``: how many
    the conversation has, when the caller counted them already."""
    config = config or versions.config_for_ticket(ticket.pk)
    local = run_once(
        key=f"triage-local:message:{message.pk}",
        kind=AIRun.Kind.TRIAGE,
        ticket=ticket,
        message=message,
        provider="local",
        model="triage-local",
        call=lambda: (_local_triage(ticket, query, customer_messages), {"model": ""}),
        version=config,
    )
    if injection or llm.provider_for("triage") != "openai":
        return local
    try:
        remote = run_once(
            key=f"triage:message:{message.pk}",
            kind=AIRun.Kind.TRIAGE,
            ticket=ticket,
            message=message,
            provider="openai",
            model=config.model_triage,
            call=lambda: _openai_triage(query, config),
            version=config,
        )
    except llm.LLMUnavailable as exc:
        local["fallback"] = exc.reason
        return local
    merged = dict(local)
    for field in ("sentiment", "language", "summary"):
        if remote.get(field):
            merged[field] = remote[field]
    if ROUTING_REQUEST.search(query):
        merged["signals"] = [*local.get("signals", []), "routing_requested"]
    else:
        if remote.get("category"):
            merged["category"] = remote["category"]
        if remote.get("department") in _department_slugs():
            merged["department"] = remote["department"]
            merged["out_of_scope"] = False
        elif remote.get("department") == "none":
            merged["department"], merged["out_of_scope"] = "", True
        merged["priority"] = max(local["priority"], remote["priority"], key=lambda p: PRIORITY_ORDER.get(p, 1))
    merged["needs_human"] = bool(local.get("needs_human") or remote.get("needs_human"))
    merged["needs_human_reason"] = local.get("needs_human_reason") or remote.get("needs_human_reason", "")
    merged["provider"], merged["model"] = "openai", remote.get("model", "")
    return merged


def _department_slugs() -> dict[str, str]:
    return dict(Department.objects.filter(is_active=True).values_list("slug", "description"))


def _openai_triage(query: str, config) -> tuple[dict, dict]:
    redacted = pii.redact(query)
    departments = "\n".join(f"- {slug}: {desc}" for slug, desc in _department_slugs().items())
    messages = [
        {
            "role": "system",
            "content": config.triage_prompt.format(
                site=site_name(), departments=departments, canary=guard.new_canary()
            ),
        },
        {"role": "user", "content": guard.wrap_untrusted(redacted.text, label="customer message")},
    ]
    result = llm.chat(task="triage", messages=messages, schema=TriageOut, max_tokens=300, model=config.model_triage)
    parsed: TriageOut = result.parsed
    data = parsed.model_dump()
    data["summary"] = pii.restore(data["summary"], redacted.mapping)[:140]
    data["model"] = result.model
    return data, usage_of(result)


def triage_apply(ticket: Ticket, triage: dict, *, routing: bool = True) -> Ticket:
    """Write the AI's triage, except what an agent already decided: their corrections win, the AI
    never lowers a priority, and it never moves a ticket a person is working on to another queue.

    ``routing=False`` (the text carries injection signals): category, priority and department stay
    as they are — whatever the text says, a person routes it — only the descriptive fields are set."""
    corrected = set(
        TicketEvent.objects.filter(
            ticket=ticket,
            actor_kind="agent",
            kind__in=[
                TicketEvent.Kind.TRIAGE_CHANGED,
                TicketEvent.Kind.DEPARTMENT_CHANGED,
                TicketEvent.Kind.PRIORITY_CHANGED,
            ],
        ).values_list("field", flat=True)
    )
    if ticket.opened_by_id is not None:  # the agent who opened it for the customer chose its queue and priority
        corrected |= {"department", "priority"}
    fields: dict = {}
    for name in ("category", "sentiment", "language") if routing else ("sentiment", "language"):
        if name not in corrected and triage.get(name):
            fields[name] = triage[name]
    if triage.get("summary"):
        fields["ai_summary"] = triage["summary"]
    if not routing:
        return services.ticket_apply_ai_triage(ticket=ticket, details=_details(triage), **fields)
    if "priority" not in corrected and PRIORITY_ORDER.get(triage.get("priority"), 0) > PRIORITY_ORDER.get(
        ticket.priority, 0
    ):
        fields["priority"] = triage["priority"]
    if "department" not in corrected and not ticket.assignee_id and triage.get("department"):
        department = Department.objects.filter(slug=triage["department"], is_active=True).first()
        if department is not None:
            fields["department"] = department
    return services.ticket_apply_ai_triage(ticket=ticket, details=_details(triage), **fields)


def _details(triage: dict) -> dict:
    return {**triage, "summary": triage.get("summary", "")}
