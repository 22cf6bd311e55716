"""Customers, departments (queues) with SLA policies, tickets, their messages, audit events, AI runs and
email records — one module per concern, every model importable from here (``from tickets.models import
Ticket``; migrations refer to ``tickets.models.new_access_key`` and the like).

Every change to these rows goes through ``tickets.services``; the models hold only single-row,
side-effect-free logic.
"""

from tickets.models.ai import (
    AIConfigVersion,
    AIDraft,
    AIExperiment,
    AIRun,
    EscalationRule,
    KnowledgeCalibration,
    TriageModel,
)
from tickets.models.email import Attachment, EmailRecord
from tickets.models.inbox import SavedView, Tag
from tickets.models.macros import Macro
from tickets.models.queues import (
    PRIORITY_RANK,
    AgentProfile,
    Customer,
    Department,
    Priority,
    SLAPolicy,
    SLATarget,
    _default_business_days,
)
from tickets.models.tickets import ActorKind, Message, Ticket, TicketEvent, new_access_key
from tickets.models.widget import WidgetConversation, WidgetSite

__all__ = [
    "PRIORITY_RANK",
    "AIConfigVersion",
    "AIDraft",
    "AIExperiment",
    "AIRun",
    "ActorKind",
    "AgentProfile",
    "Attachment",
    "Customer",
    "Department",
    "EmailRecord",
    "EscalationRule",
    "KnowledgeCalibration",
    "Macro",
    "Message",
    "Priority",
    "SLAPolicy",
    "SLATarget",
    "SavedView",
    "Tag",
    "Ticket",
    "TicketEvent",
    "TriageModel",
    "WidgetConversation",
    "WidgetSite",
    "_default_business_days",
    "new_access_key",
]
