"""DDXPlus's questions in plain English (knowledge/ddxplus_questions.json): validated at load, and no clinicians'
word reaches a patient through any DDXPlus evidence's question."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from consult.triage import TriageEngine, TriageInput, Turn, knowledge_load
from consult.triage.ddxplus_questions import QUESTIONS_FILE, plain_questions_load, plain_questions_read
from consult.triage.differential import Evidence
from consult.triage.knowledge import KNOWLEDGE_DIR

DDXPLUS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "DDXPlus"
needs_ddxplus = pytest.mark.skipif(not (DDXPLUS / "release_evidences.json").exists(),
                                   reason=f"DDXPlus not found at {DDXPLUS} (shared data)")
# Words a patient may not know, or translation slips, that no question shown to a patient may contain.
JARGON = ("copd", "chronic obstructive", "pulmonary", "bronchodilator", "lesion", "pericarditis", "intravenous",
          "intramuscular", "nsaid", "anticoagulant", "noac", "immunosuppressed", "metastatic", "pneumothorax",
          "sputum", "diffuse", "hiatal", "endocrine", "corticosteroid", "dilates", "thrombosis", "dvt", "sinusitis",
          "septum", "gastroesophageal", "hyperthyroidism", "pertussis", "apnea", "osa", "cardiovascular",
          "psychiatric", "menstruation", "menstrual", "prematurely", "intercourse", "distended", "articulating",
          "alleviated", "exertion", "radiate", "characterize", "involuntary", "stool", "stools", "diarrhea",
          "anemia", "bmi", "abdomen is", "nasal discharge", "nasal congestion", "human immunodeficiency",
          "the person have", "whoooping", "in in", "then usually", "about do die", "((", "’")


def _evidences() -> dict:
    return json.loads((DDXPLUS / "release_evidences.json").read_text(encoding="utf-8"))


def _final_question(knowledge, name: str, ddxplus_question: str) -> str:
    """The question a patient reads for a DDXPlus evidence: its finding's (a binary evidence, or any value of a
    multiple-choice evidence a finding groups), else the plain wording, else DDXPlus's own."""
    finding = knowledge.finding_for_ddxplus().get(name)
    return knowledge.findings[finding].question if finding else plain_questions_load().text(name, ddxplus_question)


def _jargon(text: str) -> list[str]:
    lower = text.lower()
    return [w for w in JARGON if re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", lower)]


@needs_ddxplus
def test_every_reworded_evidence_is_a_ddxplus_evidence():
    evidences = _evidences()
    plain = plain_questions_read(evidences=evidences)
    assert len(evidences) == 223 and len(plain.questions) >= 150
    assert set(plain.questions) <= set(evidences)
    assert all(q.sources[0] == "ddxplus" for q in plain.questions.values())


@needs_ddxplus
def test_no_ddxplus_question_a_patient_reads_has_jargon():
    knowledge = knowledge_load()
    found = {name: _jargon(_final_question(knowledge, name, e["question_en"])) for name, e in _evidences().items()}
    assert {name: words for name, words in found.items() if words} == {}


@needs_ddxplus
def test_the_jargon_check_catches_ddxplus_own_words():
    assert _jargon(_evidences()["E_31"]["question_en"]) and _jargon(_evidences()["E_124"]["question_en"])


def _knowledge_copy(tmp_path: Path, questions: list) -> Path:
    shutil.copy(KNOWLEDGE_DIR / "sources.json", tmp_path / "sources.json")
    (tmp_path / QUESTIONS_FILE).write_text(json.dumps({"version": "t", "questions": questions}), encoding="utf-8")
    return tmp_path


def test_an_unknown_evidence_is_an_error_naming_the_entry(tmp_path):
    directory = _knowledge_copy(tmp_path, [
        {"evidence": "E_31", "question": "Do you have a long-term lung disease?", "sources": ["ddxplus"]},
        {"evidence": "E_9999", "question": "Do you have it?", "sources": ["ddxplus"]}])
    with pytest.raises(ValueError, match=r"ddxplus_questions.json question 'E_9999': unknown DDXPlus evidence"):
        plain_questions_read(directory, evidences={"E_31", "E_9"})


@pytest.mark.parametrize(("entry", "message"), [
    ({"evidence": "E_31", "question": "Do you?", "sources": ["nhs_cough"]}, "starting with 'ddxplus'"),
    ({"evidence": "E_31", "question": "Do you?", "sources": ["ddxplus", "nhs_nowhere"]}, "unknown source"),
    ({"evidence": "E_31", "question": "Do you", "sources": ["ddxplus"]}, "ends with"),
    ({"evidence": "31", "question": "Do you?", "sources": ["ddxplus"]}, "unknown DDXPlus evidence"),
    ({"evidence": "E_31", "question": "Do you?"}, "missing key"),
])
def test_a_bad_entry_is_an_error_naming_it(tmp_path, entry, message):
    directory = _knowledge_copy(tmp_path, [entry])
    with pytest.raises(ValueError, match=rf"ddxplus_questions.json .*{message}"):
        plain_questions_read(directory, evidences=None)


def test_the_shipped_file_is_valid_without_ddxplus():
    plain = plain_questions_read(evidences=None)
    assert plain.version and plain.questions["E_31"].question.endswith("?")


class _OneQuestion:
    """A differential that always asks DDXPlus's E_31 in DDXPlus's words (what DifferentialModel would)."""

    def __init__(self, question: str) -> None:
        self.evidence = Evidence("E_31", question, True)

    def unaskable(self, observed, *, age):
        return set()

    def next_question(self, posterior, *, exclude):
        return self.evidence, 1.0


def test_the_engine_asks_a_ddxplus_question_in_plain_words():
    ddxplus = "Do you have severe Chronic Obstructive Pulmonary Disease (COPD)?"
    engine = TriageEngine(knowledge_load(), differential=_OneQuestion(ddxplus))
    inp = TriageInput(turns=(Turn("I have a cough"),))
    question = engine._differential_question(inp, engine._read(inp), np.array([0.5, 0.5]), {})
    assert question.id == "ddx:E_31"
    assert question.text == plain_questions_load().questions["E_31"].question and not _jargon(question.text)
