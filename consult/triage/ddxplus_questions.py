"""DDXPlus's questions in plain English: `knowledge/ddxplus_questions.json` (see knowledge/README.md).

DDXPlus's English questions were translated from French and use clinicians' words ("COPD", "bronchodilator",
"lesion"); the interview shows the patient this file's wording instead, in our own words and with the same medical
meaning (a yes means the same evidence). Pure Python (never imports Django).

Validated at load: every entry's evidence must be one of DDXPlus's (release_evidences.json in `DDXPLUS_DIR`, the
same environment variable and default folder as config/settings.py), every source one of sources.json's, "ddxplus"
first; an error names the file and the entry (ValueError).
"""
from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consult.triage.knowledge import KNOWLEDGE_DIR, _fail, _file, _object, _sources, _text

QUESTIONS_FILE = "ddxplus_questions.json"
DDXPLUS_DEFAULT_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "DDXPlus"
_EVIDENCE = re.compile(r"E_\d+")


@dataclass(frozen=True)
class PlainQuestion:
    evidence: str  # DDXPlus evidence name ("E_31")
    question: str  # the plain-English question shown to the patient
    sources: tuple[str, ...]  # source ids of sources.json: "ddxplus", then the NHS page the wording explains from


@dataclass(frozen=True)
class PlainQuestions:
    version: str
    questions: Mapping[str, PlainQuestion]  # evidence name -> its plain wording

    def text(self, evidence: str, ddxplus_question: str) -> str:
        """The question the patient reads for `evidence`: the plain wording, else DDXPlus's own `ddxplus_question`."""
        plain = self.questions.get(evidence)
        return plain.question if plain is not None else ddxplus_question


def ddxplus_evidences_read(directory: str | Path | None = None) -> dict[str, Any] | None:
    """DDXPlus's evidences {name: {"question_en", "data_type", ...}} from release_evidences.json in `directory`
    (default: $DDXPLUS_DIR, else ../shared/data/DDXPlus); None when the file is not there."""
    directory = Path(directory or os.environ.get("DDXPLUS_DIR") or DDXPLUS_DEFAULT_DIR)
    path = directory / "release_evidences.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def plain_questions_read(directory: str | Path = KNOWLEDGE_DIR, *,
                         evidences: Collection[str] | None) -> PlainQuestions:
    """Read and validate `directory`/ddxplus_questions.json against sources.json in the same directory and the
    DDXPlus evidence names `evidences` (None: their form "E_<n>" only, for a machine without DDXPlus).
    Raises ValueError naming the file and the entry."""
    directory = Path(directory)
    _, sources = _sources(directory)
    version, entries, _ = _file(directory, QUESTIONS_FILE, "questions")
    questions: dict[str, PlainQuestion] = {}
    for i, entry in enumerate(entries):
        name = entry.get("evidence") if isinstance(entry, Mapping) else None
        where = f"{QUESTIONS_FILE} question {name!r}" if isinstance(name, str) else f"{QUESTIONS_FILE} questions[{i}]"
        entry = _object(where, entry, {"evidence", "question", "sources"})
        name = _text(f"{where}.evidence", entry["evidence"])
        if not _EVIDENCE.fullmatch(name) or (evidences is not None and name not in evidences):
            raise _fail(where, f"unknown DDXPlus evidence {name!r}")
        if name in questions:
            raise _fail(where, f"duplicate evidence {name!r}")
        cited = entry["sources"]
        if not isinstance(cited, list) or not cited or cited[0] != "ddxplus":
            raise _fail(f"{where}.sources", "expected a list of source ids starting with 'ddxplus'")
        if unknown := [s for s in cited if s not in sources]:
            raise _fail(f"{where}.sources", f"unknown source(s) {unknown}")
        question = _text(f"{where}.question", entry["question"])
        if not question.endswith("?"):
            raise _fail(f"{where}.question", "a question ends with '?'")
        questions[name] = PlainQuestion(name, question, tuple(cited))
    return PlainQuestions(version, questions)


@functools.lru_cache(maxsize=1)
def plain_questions_load() -> PlainQuestions:
    """The shipped wording, read once per process and checked against DDXPlus's evidences where DDXPlus is
    installed (`ddxplus_evidences_read`)."""
    return plain_questions_read(evidences=ddxplus_evidences_read())


def ddxplus_question_text(evidence: str, ddxplus_question: str) -> str:
    """What the patient reads for a DDXPlus evidence the knowledge base has no finding for: the shipped plain
    wording, else DDXPlus's `ddxplus_question`."""
    return plain_questions_load().text(evidence, ddxplus_question)
