"""Every write to tickets: creation, messages, the status state machine, assignment, escalation,
triage corrections, the AI's answers and drafts, CSAT and the beat sweeps. Each writes its
``TicketEvent`` in the same transaction and schedules its own effects on commit.

Preconditions are checked here, not in views: a service raises ``TicketRuleError`` (a message a
person can act on) and changes nothing when a rule is broken.

The package is split by concern; callers import from here (``from tickets import services``).
"""

from tickets.services.common import AuthorKind, Status, TicketRuleError
from tickets.services.conversations import (
    CLIENT_ID_RE,
    CSAT_COMMENT_MAX_LENGTH,
    MESSAGE_MAX_LENGTH,
    SUBJECT_MAX_LENGTH,
    TRANSITIONS,
    can_transition,
    customer_get_or_create,
    message_create,
    message_create_customer_async,
    message_email_kind,
    ticket_change_status,
    ticket_close,
    ticket_create,
    ticket_record_csat,
    ticket_reopen,
    ticket_resolve,
    ticket_set_customer_email,
)
from tickets.services.customer import (
    HUMAN_REQUESTED_REASON,
    message_record_feedback,
    ticket_request_human,
    ticket_resolve_by_customer,
    ticket_set_ui_language,
)
from tickets.services.drafts import (
    HANDOVER_NOTICE,
    HANDOVER_TEAM,
    ai_acknowledge,
    ai_draft_discard,
    ai_draft_use,
    ai_reply_record,
    hand_over,
    ticket_apply_ai_triage,
)
from tickets.services.gate import department_feedback_threshold_store, knowledge_calibration_store
from tickets.services.housekeeping import retention_purge, ticket_auto_close, ticket_sla_sweep
from tickets.services.intake import CONSOLE_CHANNELS, ticket_open_for_customer
from tickets.services.macros import (
    macro_actions_describe,
    macro_can_manage,
    macro_check,
    macro_delete,
    macro_render,
    macro_save,
    ticket_reply_send,
)
from tickets.services.merge import ticket_merge
from tickets.services.queues import (
    TRIAGE_TEXT_FIELDS,
    department_notify_escalation,
    ticket_assign,
    ticket_auto_assign,
    ticket_escalate,
    ticket_update_triage,
)
from tickets.services.replies import ReplyConflict, agent_reply_send
from tickets.services.triage_models import (
    triage_model_activate,
    triage_model_announce,
    triage_model_promote,
    triage_model_rollback,
)

__all__ = [
    "CLIENT_ID_RE",
    "CONSOLE_CHANNELS",
    "CSAT_COMMENT_MAX_LENGTH",
    "HANDOVER_NOTICE",
    "HANDOVER_TEAM",
    "HUMAN_REQUESTED_REASON",
    "MESSAGE_MAX_LENGTH",
    "SUBJECT_MAX_LENGTH",
    "TRANSITIONS",
    "TRIAGE_TEXT_FIELDS",
    "AuthorKind",
    "ReplyConflict",
    "Status",
    "TicketRuleError",
    "agent_reply_send",
    "ai_acknowledge",
    "ai_draft_discard",
    "ai_draft_use",
    "ai_reply_record",
    "can_transition",
    "customer_get_or_create",
    "department_feedback_threshold_store",
    "department_notify_escalation",
    "hand_over",
    "knowledge_calibration_store",
    "macro_actions_describe",
    "macro_can_manage",
    "macro_check",
    "macro_delete",
    "macro_render",
    "macro_save",
    "message_create",
    "message_create_customer_async",
    "message_email_kind",
    "message_record_feedback",
    "retention_purge",
    "ticket_apply_ai_triage",
    "ticket_assign",
    "ticket_auto_assign",
    "ticket_auto_close",
    "ticket_change_status",
    "ticket_close",
    "ticket_create",
    "ticket_escalate",
    "ticket_merge",
    "ticket_open_for_customer",
    "ticket_record_csat",
    "ticket_reopen",
    "ticket_reply_send",
    "ticket_request_human",
    "ticket_resolve",
    "ticket_resolve_by_customer",
    "ticket_set_customer_email",
    "ticket_set_ui_language",
    "ticket_sla_sweep",
    "ticket_update_triage",
    "triage_model_activate",
    "triage_model_announce",
    "triage_model_promote",
    "triage_model_rollback",
]
