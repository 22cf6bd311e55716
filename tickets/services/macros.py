"""Macros (canned replies): saving one — who may own and share what —, rendering one for a ticket, and
sending a reply together with the actions of the macros inserted in it.

Rendering substitutes a closed list of placeholders (``tickets.models.macros.PLACEHOLDERS``) in one pass
with ``re.sub``: a customer named ``{{ ticket.subject }}`` stays a name, and no template engine ever
sees a macro's text. Values are escaped for the message markdown, so a name cannot become a link.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from tickets.models import AIDraft, Macro, Message, Priority, Ticket
from tickets.models.macros import ARTICLE_PREFIX, ASSIGN_TO_SENDER, PLACEHOLDER_RE, article_slugs
from tickets.services.common import AuthorKind, TicketRuleError
from tickets.services.conversations import message_create, ticket_change_status
from tickets.services.drafts import ai_draft_use
from tickets.services.queues import ticket_assign, ticket_update_triage

MAX_MACROS_PER_REPLY = 5
# What the message markdown (supportflow.markdown) would turn into markup: links, emphasis, code, autolinks.
_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*[]<>"})


def _markdown_text(value: str) -> str:
    return " ".join(str(value).split()).translate(_MARKDOWN_SPECIAL)


def _first_name(ticket: Ticket) -> str:
    customer = ticket.customer
    if customer.name.strip():
        return customer.name.split()[0]
    return customer.email.partition("@")[0]


# --- saving -------------------------------------------------------------------------------------------


def macro_can_manage(*, macro: Macro, user: AbstractBaseUser) -> bool:
    """Agents manage their own macros; shared ones need ``manage_shared_macro`` (the Managers group)."""
    if user.is_superuser:
        return True
    if macro.is_shared:
        return user.has_perm("tickets.manage_shared_macro")
    return macro.owner_id == user.pk and user.has_perm("tickets.change_macro")


def macro_check(*, macro: Macro, actor: AbstractBaseUser, shared: bool = False) -> None:
    """Give the macro its owner — ``actor`` for a new personal one, nobody when ``shared`` (managers only) —
    and validate it all: who may change it, its department, its name (unique per owner), placeholders,
    articles and actions (``Macro.clean``). Raises ``ValidationError``; changes nothing in the database."""
    if macro.pk is not None:
        stored = Macro.objects.filter(pk=macro.pk).first()
        if stored is not None and not macro_can_manage(macro=stored, user=actor):
            raise ValidationError(gettext("This macro is not yours to change."))
    macro.owner = None if shared else (macro.owner or actor)
    if not macro_can_manage(macro=macro, user=actor):
        raise ValidationError(gettext("Only managers share macros."))
    if macro.department_id is not None and not _serves(actor, macro.department_id):
        raise ValidationError({"department": gettext("You can only limit a macro to a department you work in.")})
    macro.full_clean()


@transaction.atomic
def macro_save(*, macro: Macro, actor: AbstractBaseUser, shared: bool = False) -> Macro:
    """Create or update a macro (see ``macro_check`` for who may do what)."""
    macro_check(macro=macro, actor=actor, shared=shared)
    macro.save()
    return macro


def _serves(user: AbstractBaseUser, department_id: int) -> bool:
    from tickets.models import Department
    from tickets.selectors import user_sees_all_departments

    return user_sees_all_departments(user) or Department.objects.filter(pk=department_id, agents__user=user).exists()


@transaction.atomic
def macro_delete(*, macro: Macro, actor: AbstractBaseUser) -> None:
    if not macro_can_manage(macro=macro, user=actor):
        raise PermissionDenied(gettext("This macro is not yours to delete."))
    macro.delete()


# --- rendering ----------------------------------------------------------------------------------------


def macro_render(*, macro: Macro, ticket: Ticket, agent: AbstractBaseUser, base_url: str) -> str:
    """The macro's text for this ticket and agent. ``base_url`` (``https://support.example.com``) makes
    article links absolute, as the message markdown only links http(s) addresses.

    Raises ``TicketRuleError`` when a linked article is no longer published (the agent edits the macro
    rather than sending a dead link)."""
    from knowledge.models import DEFAULT_NAMESPACE, Article

    values = {
        "customer.first_name": _first_name(ticket),
        "customer.name": ticket.customer.name or ticket.customer.email,
        "ticket.reference": ticket.reference,
        "ticket.subject": ticket.subject,
        "agent.first_name": agent.first_name or agent.get_username(),
    }
    slugs = article_slugs(macro.body)
    articles = (
        dict(
            Article.objects.filter(
                slug__in=slugs, namespace=DEFAULT_NAMESPACE, status=Article.Status.PUBLISHED
            ).values_list("slug", "title")
        )
        if slugs
        else {}
    )

    def substitute(match) -> str:
        name = match.group(1)
        if name.startswith(ARTICLE_PREFIX):
            slug = name[len(ARTICLE_PREFIX) :].strip()
            if slug not in articles:
                raise TicketRuleError(
                    gettext(
                        "The macro links to the article “%(slug)s”, which is not published any more: edit the macro."
                    )
                    % {"slug": slug}
                )
            return f"[{_markdown_text(articles[slug])}]({base_url.rstrip('/')}/help/articles/{slug}/)"
        if name not in values:
            raise TicketRuleError(
                gettext("The macro uses an unknown placeholder {{ %(name)s }}: edit the macro.") % {"name": name}
            )
        return _markdown_text(values[name])

    return PLACEHOLDER_RE.sub(substitute, macro.body)


def macro_actions_describe(actions: dict[str, Any], *, assignee_name: str = "") -> list[str]:
    """The actions in words, for the reply box and the macro list ("assign to me", "set pending")."""
    words: list[str] = []
    if actions.get("assign") == ASSIGN_TO_SENDER:
        words.append(gettext("assign to me"))
    elif actions.get("assign") is not None:
        words.append(gettext("assign to %(name)s") % {"name": assignee_name or "?"})
    if actions.get("priority"):
        words.append(gettext("priority %(p)s") % {"p": Priority(actions["priority"]).label.lower()})
    words += [gettext("tag “%(tag)s”") % {"tag": tag} for tag in actions.get("tags") or ()]
    if actions.get("status"):
        words.append(gettext("set %(s)s") % {"s": Ticket.Status(actions["status"]).label.split(" (")[0].lower()})
    return words


# --- sending ------------------------------------------------------------------------------------------


def _merged_actions(macros: Sequence[Macro]) -> dict[str, Any]:
    """Several macros in one reply: the last one inserted decides status, assignee and priority; tags add up."""
    merged: dict[str, Any] = {}
    tags: list[str] = []
    for macro in macros:
        actions = macro.actions or {}
        merged.update({key: actions[key] for key in ("status", "assign", "priority") if actions.get(key) is not None})
        tags += [tag for tag in actions.get("tags") or () if tag not in tags]
    if tags:
        merged["tags"] = tags
    return merged


@transaction.atomic
def ticket_reply_send(
    *,
    ticket: Ticket,
    actor: AbstractBaseUser,
    body: str,
    is_internal: bool = False,
    then_status: str = "",
    draft: AIDraft | None = None,
    macros: Sequence[Macro] = (),
) -> Message:
    """An agent's reply (or internal note, or edited AI draft) from the reply box, then the actions of
    the macros inserted in it — assignment, priority and tags, then the status (``then_status`` chosen in
    the box wins over a macro's) through the state machine — and each macro's use counted.

    All or nothing: if an action breaks a rule (say, assigning to an agent outside the queue), the reply
    is not sent either and the ``TicketRuleError`` says why; the agent's text stays in the box.
    Preconditions: ``draft`` belongs to ``ticket``; ``macros`` are ones ``actor`` may use on it
    (``selectors.macros_for_ticket``)."""
    if len(macros) > MAX_MACROS_PER_REPLY:
        raise TicketRuleError(gettext("At most %(n)d macros in one reply.") % {"n": MAX_MACROS_PER_REPLY})
    if draft is not None:
        message = ai_draft_use(draft=draft, actor=actor, body=body)
    else:
        message = message_create(
            ticket=ticket, author_kind=AuthorKind.AGENT, author_user=actor, body=body, is_internal=is_internal
        )
    actions = _merged_actions(macros)
    if actions.get("assign") is not None:
        assignee = actor if actions["assign"] == ASSIGN_TO_SENDER else _agent(actions["assign"])
        ticket_assign(ticket=ticket, assignee=assignee, actor=actor)
    if actions.get("priority"):
        ticket_update_triage(ticket=ticket, actor=actor, priority=actions["priority"])
    if actions.get("tags"):
        _tags_add(ticket=ticket, names=actions["tags"], actor=actor)
    status = then_status or actions.get("status")
    if status:
        ticket_change_status(ticket=ticket, to_status=status, actor=actor)
    if macros:
        Macro.objects.filter(pk__in=[m.pk for m in macros]).update(
            usage_count=F("usage_count") + 1, last_used_at=timezone.now()
        )
    return message


def _agent(user_id: int) -> AbstractBaseUser:
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise TicketRuleError(gettext("The macro assigns to an agent who no longer exists: edit the macro."))
    return user


def _tags_add(*, ticket: Ticket, names: Sequence[str], actor: AbstractBaseUser) -> None:
    from tickets.services.tags import ticket_tag_add  # tags import the ticket services this module is part of

    for name in names:
        ticket_tag_add(ticket=ticket, name=name, actor=actor)
