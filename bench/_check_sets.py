"""The check sets of ner_engine.context: evaluation data written for the project, kept out of the runtime
library, scored by bench/context_eval.py (each split by a fixed rule: rows in file order, even positions dev,
odd positions test; bench/data/README.md describes them).

- `assertion_check.tsv`: patient-phrased messages -> the assertion expected for one mention;
- `lay_check.tsv`: lay phrases -> the concept they should reach;
- `coding_check.tsv`: patient mentions in their message -> the code expected, or "uncoded".
"""
from __future__ import annotations

import re
from pathlib import Path

from ner_engine.context.assertion import ASSERTIONS
from ner_engine.context.normalisation import SYSTEMS_BY_TYPE

DATA_DIR = Path(__file__).resolve().with_name("data")
ASSERTION_CHECK_FILE = DATA_DIR / "assertion_check.tsv"
LAY_CHECK_FILE = DATA_DIR / "lay_check.tsv"
CODING_CHECK_FILE = DATA_DIR / "coding_check.tsv"


def _rows(path: str | Path) -> list[tuple[int, str]]:
    """(line number, line) of a check set's rows: blank and `#` comment lines left out."""
    return [(number, line) for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1)
            if line.strip() and not line.startswith("#")]


def assertion_check_load(path: str | Path = ASSERTION_CHECK_FILE) -> list[tuple[str, str, tuple[int, int]]]:
    """(expected assertion, message, mention span) rows of the patient-phrased check set, in file order; the
    mention is its first whole-word occurrence in the message. A row naming an unknown assertion, or a mention
    that is not a word of its message, raises ValueError: it would silently score something else."""
    cases = []
    for line_number, line in _rows(path):
        expected, mention, message = line.split("\t")
        match = re.search(r"(?<!\w)" + re.escape(mention) + r"(?!\w)", message, re.IGNORECASE)
        if expected not in ASSERTIONS or match is None:
            raise ValueError(f"{path}:{line_number}: expected an assertion and a word of the message, got {line!r}")
        cases.append((expected, message, match.span()))
    return cases


def lay_check_rows(path: str | Path = LAY_CHECK_FILE) -> list[list[str]]:
    """(phrase, entity_type, system, code, preferred name) rows of the lay check set, in file order."""
    return [line.split("\t") for _, line in _rows(path)]


def coding_check_load(path: str | Path = CODING_CHECK_FILE) -> list[dict]:
    """Rows of the coding check set, in file order: {expected ("<system>:<code>" or "uncoded"), type, mention,
    message, name, start, end}, the mention being its first case-insensitive occurrence in the message. A row
    whose mention is not in its message raises ValueError."""
    rows = []
    for line_number, line in _rows(path):
        expected, entity_type, mention, message, name = line.split("\t")
        start = message.lower().find(mention.lower())
        if start < 0 or entity_type not in SYSTEMS_BY_TYPE:
            raise ValueError(f"{path}:{line_number}: mention not in its message or unknown type: {line!r}")
        rows.append({"expected": expected, "type": entity_type, "mention": message[start:start + len(mention)],
                     "message": message, "name": name, "start": start, "end": start + len(mention)})
    return rows
