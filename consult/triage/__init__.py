"""The consultation interview (triage): knowledge base, evidence, differential, engine. Pure Python: never
imports Django or ner_engine (the app passes ner_engine's assertion rules in)."""
from consult.triage.differential import DifferentialModel, Ranked
from consult.triage.engine import (
    Question,
    Reason,
    TriageDecision,
    TriageEngine,
    TriageInput,
    TriageSettings,
    Turn,
)
from consult.triage.knowledge import KnowledgeBase, knowledge_load, knowledge_read

__all__ = [
    "DifferentialModel",
    "KnowledgeBase",
    "Question",
    "Ranked",
    "Reason",
    "TriageDecision",
    "TriageEngine",
    "TriageInput",
    "TriageSettings",
    "Turn",
    "knowledge_load",
    "knowledge_read",
]
