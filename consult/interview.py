"""The interview as the app runs it: the engine, built once per process, and its input built from stored
messages and their mentions. Pure computation, shared by the write side (services.triage stores the decision) and
the read side (selectors.case re-runs it on a clinician's reviewed findings, writing nothing)."""
from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings

from consult import extraction
from consult.models import Consultation, Message
from consult.triage import DifferentialModel, TriageEngine, TriageInput, Turn, knowledge_load

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def triage_engine_get():
    """The interview engine, built once per process: the knowledge base, the DDXPlus differential when
    settings.DDXPLUS_DIR holds DDXPlus (else the knowledge base alone), ner_engine's assertion rules and its sentence
    encoder (findings heard by meaning)."""
    knowledge = knowledge_load()
    differential = None
    directory = settings.DDXPLUS_DIR
    if directory and (directory / "release_conditions.json").exists():
        differential = DifferentialModel.from_directory(directory, groups=knowledge.ddxplus_groups())
    else:
        logger.warning("DDXPlus not found at %s: the interview runs without its differential", directory)
    return TriageEngine(knowledge, differential=differential, assertion_of=extraction.assertions_detect,
                        encode=extraction.sentences_encode)



def triage_input_build(*, consultation: Consultation, messages: Sequence[tuple[Message, Iterable[Any]]],
                       current: Message, answered: Mapping[str, str], previous_urgency: str | None):
    """The interview's input for `messages` (patient messages in order, each with its mentions: objects with
    start, end, type, text, attributes and assertion, i.e. Entity rows or review Annotations). `answered` maps a
    message id (str) to the question it answered; the questions asked after every message but `current` come
    from the consultation's triage state (`current`'s own question is decided now)."""
    turns = tuple(
        Turn(text=message.text, answered=answered.get(str(message.id)), entities=tuple(
            {"start": m.start, "end": m.end, "type": m.type, "text": m.text,
             "attributes": {**(m.attributes or {}), "assertion": m.assertion}} for m in mentions))
        for message, mentions in messages
    )
    asked_after = (consultation.triage_state or {}).get("asked") or {}
    asked = tuple(asked_after[str(m.id)] for m, _ in messages if m.id != current.id and asked_after.get(str(m.id)))
    return TriageInput(turns=turns, asked=asked, previous_urgency=previous_urgency,
                       age=consultation.age, sex=consultation.sex or None)
