"""The consultation's controlled vocabularies, defined once (pure Python: the triage engine imports it too).

Urgency levels are the dispositions of a telephone-triage service (NHS 111 style), most urgent first.
"""
from __future__ import annotations

from collections.abc import Mapping

URGENCY_LEVELS: tuple[str, ...] = (
    "emergency_ambulance",
    "emergency",
    "consultation_24",
    "consultation",
    "self_care",
)
# What a patient and a clinician read for each level.
URGENCY_LABELS: Mapping[str, str] = {
    "emergency_ambulance": "Call an ambulance now",
    "emergency": "Go to an emergency department now",
    "consultation_24": "Get medical help today",
    "consultation": "See a doctor in the next few days",
    "self_care": "Self-care",
}
# Levels at which the interview stops asking and tells the patient to act now.
URGENCY_ACT_NOW: frozenset[str] = frozenset({"emergency_ambulance", "emergency"})

ASSERTIONS: tuple[str, ...] = ("present", "absent", "possible", "historical", "hypothetical", "family")
# Assertions under which the finding counts as the patient's own, current finding. "possible" counts:
# when unsure, the safer reading.
CURRENT_ASSERTIONS: frozenset[str] = frozenset({"present", "possible"})

# What a clinician may annotate; also the `types` of exported documents, which tells training that every
# mention of these types in the text was annotated (a missing one is a true negative).
REVIEW_TYPES: tuple[str, ...] = ("SYMPTOM", "DISEASE", "DRUG", "ANATOMY", "DURATION", "SEVERITY")


def urgency_rank(level: str | None) -> int:
    """0 is the most urgent level; None (not assessed) ranks after every level."""
    return URGENCY_LEVELS.index(level) if level is not None else len(URGENCY_LEVELS)


def urgency_max(*levels: str | None) -> str | None:
    """The most urgent of `levels` (None entries ignored); None when all are None."""
    known = [level for level in levels if level is not None]
    return min(known, key=urgency_rank) if known else None


# The Celery queue the NER worker consumes (settings, the launcher and the worker agree on it).
NER_QUEUE = "ner"
# The demo accounts `make run` creates: username, the environment variable holding its password, superuser.
DEMO_ACCOUNTS: tuple[tuple[str, str, bool], ...] = (
    ("clinician", "DEMO_CLINICIAN_PASSWORD", False),
    ("admin", "DEMO_ADMIN_PASSWORD", True),
)
