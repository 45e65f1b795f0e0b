"""Rule-based triage for consultations. Pure Python: never imports Django."""
from consult.triage.engine import (
    SLOTS,
    URGENCY_LEVELS,
    FiredRule,
    Question,
    Rule,
    TriageDecision,
    TriageEngine,
    TriageInput,
)

__all__ = [
    "SLOTS",
    "URGENCY_LEVELS",
    "FiredRule",
    "Question",
    "Rule",
    "TriageDecision",
    "TriageEngine",
    "TriageInput",
]
