"""Questions about someone else: who the conversation is about, and the interview's questions reworded for them."""
from __future__ import annotations

import re

import pytest

from consult.triage import TriageEngine, TriageInput, TriageSettings, Turn, knowledge_load
from consult.triage.ddxplus_questions import plain_questions_load
from consult.triage.engine import ANYTHING_ELSE_AGAIN, COMPLAINT_AGAIN, PAIN_SITE_QUESTION
from consult.triage.wording import Person, person_read, question_for

SON, CHILD, MUM = Person("your son", "he"), Person("your child", "they"), Person("your mum", "she")
_YOU = re.compile(r"\byou(?:r|rs|rself|rselves)?\b|\byou'", re.IGNORECASE)


def _all_question_texts() -> list[str]:
    knowledge = knowledge_load()
    return [f.question for f in knowledge.findings.values()] + list(knowledge.general_questions.values()) + [
        q.question for q in plain_questions_load().questions.values()] + [
        ANYTHING_ELSE_AGAIN, COMPLAINT_AGAIN, PAIN_SITE_QUESTION, "Do you have any of these?\n• stiff neck\nPlease answer yes or no."]


@pytest.mark.parametrize(("opening", "expected"), [
    ("my 3 year old son has a barking cough and a temperature", SON),
    ("My mum fell and hurt her wrist", MUM),
    ("my 3 year old has had a fever since yesterday", CHILD),
    ("I'm worried about my daughter, she has a rash", Person("your daughter", "she")),
    ("our baby won't stop crying", Person("your baby", "they")),
    ("my partner has chest pain", Person("your partner", "they")),
    ("I have a headache and my mum had migraines", None),
    ("my dad had a heart attack at 50 and now I have chest pain", None),
    ("I've got chest pain", None),
    ("my head hurts", None),
])
def test_who_the_questions_are_about(opening, expected):
    assert person_read([Turn(opening)]) == expected


def test_only_the_opening_and_the_complaint_decide_who():
    turns = [Turn("I have a cough"), Turn("my mum had asthma", answered="general:history")]
    assert person_read(turns) is None
    assert person_read([Turn("hello"), Turn("my son has a rash", answered="complaint")]) == SON


@pytest.mark.parametrize(("text", "person", "expected"), [
    ("Do you have a headache?", SON, "Does your son have a headache?"),
    ("Are you short of breath or finding it hard to breathe?", MUM,
     "Is your mum short of breath or finding it hard to breathe?"),
    ("Have you lost your sense of smell?", SON, "Has your son lost his sense of smell?"),
    ("Is your neck stiff, so that it hurts to bend your chin down to your chest?", CHILD,
     "Is your child's neck stiff, so that it hurts to bend their chin down to their chest?"),
    ("Does bright light hurt your eyes or make you want to be in the dark?", MUM,
     "Does bright light hurt your mum's eyes or make her want to be in the dark?"),
    ("Does the headache get worse when you cough, sneeze, strain or bend over?", SON,
     "Does the headache get worse when your son coughs, sneezes, strains or bends over?"),
    ("Do you have a cough?", CHILD, "Does your child have a cough?"),
    ("Are you (or the person) breathing much faster than normal?", CHILD,
     "Is your child breathing much faster than normal?"),
    ("Do you have, or have you had, weakness or paralysis in an arm, leg or your face?", CHILD,
     "Does your child have, or have they had, weakness or paralysis in an arm, leg or their face?"),
    ("How old are you, and are you male or female? (If you are asking for someone else, tell me about them.)", SON,
     "How old is your son, and is he male or female?"),
    ("Have you hurt yourself on purpose?", MUM, "Has your mum hurt herself on purpose?"),
    ("Have you noticed bright red blood or blood clots in your poo?", SON,
     "Has anyone noticed bright red blood or blood clots in your son's poo?"),
])
def test_questions_reworded_for_another_person(text, person, expected):
    assert question_for(text, person) == expected


def test_a_question_that_cannot_be_reworded_is_kept_after_a_line_saying_whom_to_answer_for():
    text = "Is there anything else you have noticed, or anything else that worries you? If not, say no."
    assert question_for(text, SON) == f"(Please answer for your son.)\n{text}"


def test_the_patient_s_own_questions_are_unchanged():
    assert all(question_for(text, None) == text for text in _all_question_texts())


@pytest.mark.parametrize("person", [SON, CHILD, MUM])
def test_every_question_is_reworded_or_says_whom_to_answer_for(person):
    left = [text for text in _all_question_texts() if (worded := question_for(text, person)) != text and _YOU.search(
        worded.removeprefix(person.prefix).replace(person.noun, "")) and not worded.startswith(person.prefix)]
    unchanged = [text for text in _all_question_texts() if _YOU.search(text) and question_for(text, person) == text]
    assert left == [] and unchanged == []
    prefixed = [text for text in _all_question_texts() if question_for(text, person).startswith(person.prefix)]
    assert len(prefixed) <= 12  # the fallback stays the exception


def _converse(engine, opening: str) -> list:
    turns, asked, questions = [Turn(opening)], [], []
    decision = engine.decide(TriageInput(turns=tuple(turns)))
    for _ in range(40):
        if decision.concluded or decision.question is None:
            break
        questions.append(decision.question)
        asked.append(decision.question.id)
        reply = {"general:demographics": "3, male", "general:duration": "2 days", "general:severity": "5"}.get(
            decision.question.id, "no")
        turns.append(Turn(reply, answered=decision.question.id))
        decision = engine.decide(TriageInput(turns=tuple(turns), asked=tuple(asked)))
    assert decision.concluded
    return questions


@pytest.fixture(scope="module")
def engine():
    return TriageEngine(knowledge_load(), settings=TriageSettings())


def test_a_parent_s_whole_interview_asks_about_their_son(engine):
    questions = _converse(engine, "my 3 year old son has a barking cough and a temperature")
    assert len(questions) >= 4
    for question in questions:
        text = question.text
        assert text.startswith(SON.prefix) or not _YOU.search(text.replace("your son", "")), text
    assert sum("your son" in q.text for q in questions) >= 3
    assert any(q.text.startswith("Does your son have any of these?") for q in questions)


def test_an_adult_s_own_interview_is_worded_as_before(engine):
    knowledge = knowledge_load()
    questions = _converse(engine, "I have a barking cough and a temperature")
    for question in questions:
        kind, _, key = question.id.partition(":")
        if kind == "finding":
            assert question.text == knowledge.findings[key].question
        elif kind == "general":
            assert question.text == knowledge.general_questions[key]
        assert "your son" not in question.text and not question.text.startswith("(Please answer")
    assert any(q.text.startswith("Do you have any of these?") for q in questions)
