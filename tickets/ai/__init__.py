"""The AI pipeline: triage, guardrails, grounded answers, the confidence gate and escalation rules."""
