"""Assertion fault kinds of issue 13 (1-6): the issue's inputs and at least three more per kind."""
from __future__ import annotations

import pytest

from ner_engine.context.assertion import AssertionDetector, sentence_bounds


@pytest.fixture(scope="module")
def detector():
    return AssertionDetector()


def full(detector, text: str, mention: str) -> tuple[str, str]:
    start = text.lower().index(mention.lower())
    return detector.detect_full(text, [(start, start + len(mention))])[0]


CASES = {
    "1 not ruled out is possible": [
        ("They haven't ruled out pneumonia.", "pneumonia", "possible"),
        ("The doctor couldn't exclude appendicitis yet.", "appendicitis", "possible"),
        ("They havent ruled out sepsis yet.", "sepsis", "possible"),
        ("Meningitis hasn't been ruled out.", "Meningitis", "possible"),
        ("the GP has not excluded a blood clot", "blood clot", "possible"),
        ("Sepsis couldn't be ruled out.", "Sepsis", "possible"),
        ("Coeliac disease is still to be ruled out.", "Coeliac disease", "possible"),
        # still negated when it was ruled out
        ("The x-ray ruled out a fracture.", "fracture", "absent"),
        ("Sepsis was ruled out.", "Sepsis", "absent"),
    ],
    "2 answers after the finding": [
        ("Fever: no. Cough: yes, for 3 days.", "Fever", "absent"),
        ("Fever: no. Cough: yes, for 3 days.", "Cough", "present"),
        ("chest pain? no", "chest pain", "absent"),
        ("Any fever? Nope.", "fever", "absent"),
        ("Headache: yes, fever: no", "Headache", "present"),
        ("Headache: yes, fever: no", "fever", "absent"),
        ("vomiting = no", "vomiting", "absent"),
        ("blood in urine? no", "blood", "absent"),
        ("rash - none", "rash", "absent"),
        ("headache yes, fever no", "fever", "absent"),
        ("chest pain?", "chest pain", "possible"),  # a question with no answer stays possible
    ],
    "3 negation stops at just / only / apart from": [
        ("no vomiting or diarrhoea, just tummy pain", "tummy pain", "present"),
        ("no vomiting or diarrhoea, just tummy pain", "diarrhoea", "absent"),
        ("no fever, only a cough", "cough", "present"),
        ("I haven't had a temperature, just a sore throat", "sore throat", "present"),
        ("No fever or chills apart from some back pain.", "back pain", "present"),
        ("no rash, mainly itching on my arms", "itching", "present"),
    ],
    "4 chat spellings of negation": [
        ("Havent had any diarrhea.", "diarrhea", "absent"),
        ("I dont have a temperature.", "temperature", "absent"),
        ("i didnt have a cough", "cough", "absent"),
        ("she doesnt have a rash", "rash", "absent"),
        ("i dnt have fever", "fever", "absent"),
        ("I havnt had any nausea", "nausea", "absent"),
        ("i cant feel any pain in my foot", "pain", "absent"),
        ("Ive not seen any blood.", "blood", "absent"),
    ],
    "5 negation stays in its condition clause": [
        ("When I don't sleep, my migraine comes back.", "migraine", "present"),
        ("if I dont eat I get headaches", "headaches", "present"),
        ("Whenever I don't drink enough, I get dizzy.", "dizzy", "present"),
        ("If I do not take my tablets my heartburn is awful", "heartburn", "present"),
        ("Every time I don't eat breakfast I get stomach cramps.", "cramps", "present"),
        # the negation still reaches a finding inside the clause or a list after a plain cue
        ("If I don't have a fever, should I still come in?", "fever", "absent"),
        ("I don't have a fever, cough or rash", "rash", "absent"),
    ],
}


@pytest.mark.parametrize("kind, text, mention, expected",
                         [(kind, *case) for kind, cases in CASES.items() for case in cases])
def test_assertion_kinds(detector, kind, text, mention, expected):
    assert full(detector, text, mention)[0] == expected


@pytest.mark.parametrize("text, mention, expected", [
    ("What should I do if my son develops a rash?", "rash", ("hypothetical", "other")),
    ("What should I do if my son develops a rash", "rash", ("hypothetical", "other")),
    ("what if my daughter gets a fever tonight", "fever", ("hypothetical", "other")),
    ("should my baby catch chickenpox what do I do", "chickenpox", ("hypothetical", "other")),
    ("If my husband starts vomiting again should he go to A&E?", "vomiting", ("hypothetical", "other")),
    ("my son developed a rash", "rash", ("family", "other")),
    ("My mum has asthma", "asthma", ("family", "other")),
    ("what if I get a fever", "fever", ("hypothetical", "patient")),
    ("I have a rash", "rash", ("present", "patient")),
])
def test_experiencer_and_hypothetical_together(detector, text, mention, expected):
    """Kind 6: whose finding (experiencer) is reported apart from whether it is there (assertion)."""
    assert full(detector, text, mention) == expected


def test_answer_stays_in_the_question_sentence():
    assert sentence_bounds("chest pain? no") == [(0, 14)]
    assert sentence_bounds("Any fever? Nope. Cough.") == [(0, 16), (16, 23)]
    assert sentence_bounds("Is it flu? I have a cough") == [(0, 10), (10, 25)]
