"""Findings heard by meaning (consult.triage.similarity) with the app's real sentence encoder."""
from __future__ import annotations

import pytest

from consult import extraction
from consult.triage import TriageEngine, TriageInput, TriageSettings, Turn, knowledge_load
from consult.triage.similarity import FindingSimilarity, clauses_split


@pytest.fixture(scope="module")
def engine():
    return TriageEngine(knowledge_load(), settings=TriageSettings(), assertion_of=extraction.assertions_detect,
                        encode=extraction.sentences_encode)


@pytest.mark.parametrize(("text", "clauses"), [
    ("I have a sore throat and a temperature", ["I have a sore throat", "a temperature"]),
    ("Headache. Neck is stiff, can't look down!", ["Neck is stiff", "can't look down"]),
    ("no", []),
    ("28, female", []),
])
def test_clauses_split(text, clauses):
    assert [text[s:e] for s, e in clauses_split(text)] == clauses


@pytest.mark.parametrize(("text", "finding", "assertion"), [
    # The patient trial's miss: a danger sign in everyday words (the synonyms list "can't swallow saliva").
    ("I can't really swallow my spit", "unable_to_swallow", "present"),
    ("my lips have gone a funny blue colour", "blue_lips", "present"),
    ("there's no blood when I cough", "coughing_blood", "absent"),
])
def test_a_finding_is_heard_by_meaning_with_its_assertion(engine, text, finding, assertion):
    decision = engine.decide(TriageInput(turns=(Turn(text),)))
    found = {f["id"]: f["assertion"] for f in decision.record["findings"]}
    assert found.get(finding) == assertion, found


def test_someone_elses_or_past_illness_is_not_the_patients(engine):
    decision = engine.decide(TriageInput(turns=(Turn("I have a cough. My dad had a stroke last year"),)))
    current = {f["id"] for f in decision.record["findings"] if f["assertion"] in ("present", "possible")}
    assert "cough" in current and not current & {"face_drooping", "one_sided_weakness", "slurred_speech"}


def test_an_answer_to_a_general_question_is_not_read_for_findings(engine):
    turns = (Turn("I have a sore throat"), Turn("for a few days now", answered="general:duration"))
    decision = engine.decide(TriageInput(turns=turns, asked=("general:duration",)))
    assert {f["id"] for f in decision.record["findings"]} <= {"sore_throat", "pain"}


def test_the_threshold_is_where_a_clause_stops_naming_a_finding():
    knowledge = knowledge_load()
    loose = FindingSimilarity(knowledge.findings, extraction.sentences_encode, threshold=0.0)
    strict = FindingSimilarity(knowledge.findings, extraction.sentences_encode, threshold=1.01)
    assert loose.find("the weather is nice today") and not strict.find("I can't really swallow my spit")


def test_a_clause_that_restates_a_finding_read_from_its_words_adds_no_other(engine):
    # "A pounding headache since Tuesday" is closest to "sudden severe headache" by a hair; the synonyms already
    # read it as a headache, so it must not become a thunderclap headache (an ambulance).
    decision = engine.decide(TriageInput(turns=(Turn("I've had a pounding headache since Tuesday"),)))
    assert "thunderclap_headache" not in {f["id"] for f in decision.record["findings"]}
