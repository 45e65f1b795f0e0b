"""The evidence readers of consult.triage.evidence: answers, the patient's fields, synonym matching."""
import pytest

from consult.triage import evidence as ev


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No", "no"), ("no.", "no"), ("Nope", "no"), ("no, it's fine", "no"), ("not really", "no"),
        ("I don't think so", "no"), ("I'm fine", None), ("I do", "yes"), ("I don't", "no"), ("Yes", "yes"), ("yeah a bit", "yes"), ("yes it is", "yes"),
        ("I'm not sure", "unsure"), ("dunno", "unsure"), ("don't know", "unsure"),
        # A finding stated with a negation is not an answer to another question.
        ("No fever. My neck feels really stiff though.", None), ("no vomiting", None),
        ("My chest hurts", None), ("", None),
    ],
)
def test_answer_read(text, expected):
    assert ev.answer_read(text) == expected


@pytest.mark.parametrize(
    ("text", "answering", "expected"),
    [
        ("I'm 58 and I smoke", False, 58), ("58", True, 58), ("about 40", True, 40),
        ("my baby is 6 weeks old", False, pytest.approx(6 / 52, abs=0.01)), ("she's 3 years old", False, 3),
        ("34F with a headache", False, 34), ("I have 2 kids", False, None), ("it's 8/10", False, None),
    ],
)
def test_age_read(text, answering, expected):
    assert ev.age_read(text, answering=answering) == expected


@pytest.mark.parametrize(
    ("text", "answering", "expected"),
    [("it's like 8/10", False, 8), ("8 out of 10", False, 8), ("7", True, 7), ("about a 6", True, 6),
     ("it's mild", True, 3), ("severe", False, 8), ("worst headache of my life", False, 10),
     ("for 3 days", True, None), ("since Tuesday", False, None)],
)
def test_severity_read(text, answering, expected):
    assert ev.severity_read(text, answering=answering) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("since Tuesday", "since tuesday"), ("started last night", "last night"), ("coughing x3 days", "x3 days"),
     ("for about a week", "for about a week"), ("I feel sick", None),
     # The patient trial's summary read "It started: since yesterday and."
     ("since yesterday and I keep coughing", "since yesterday"), ("since yesterday morning", "since yesterday morning")],
)
def test_duration_read(text, expected):
    assert ev.duration_read(text) == expected


def test_habits_are_not_medicines():
    assert ev.habits_read("I'm 58 and I smoke, and I have too much coffee") == ["smoking", "caffeine"]
    entities = [{"type": "DRUG", "text": "smoke", "attributes": {"assertion": "present"}},
                {"type": "DRUG", "text": "ramipril", "attributes": {"assertion": "present"}},
                {"type": "DRUG", "text": "coffee", "attributes": {}}]
    assert ev.medications_read(entities) == ["ramipril"]


def test_pregnancy_and_sex():
    assert ev.pregnancy_read("I'm 8 weeks pregnant") is True
    assert ev.pregnancy_read("I'm not pregnant") is False
    assert ev.sex_read("female", answering=True) == "female"
    assert ev.sex_read("M", answering=True) == "male"
    assert ev.sex_read("I'm a 40 year old man", answering=False) == "male"


@pytest.mark.parametrize(
    ("synonym", "text", "matches"),
    [("neck ... stiff", "my neck feels really stiff though", True),
     ("neck ... stiff", "my neck is fine but my back is stiff", False),  # the gap stays in one clause
     ("throwing up", "I keep throwing up", True), ("throwing up", "throwingup", False),
     ("can't breathe", "i cant breathe", True), ("short of breath", "really short of  breath", True)],
)
def test_synonym_regex(synonym, text, matches):
    import re

    assert bool(re.search(ev.synonym_regex(synonym), ev.text_normalise(text))) is matches


def test_text_normalise_keeps_offsets():
    text = "I have a\u200bheadache \u2019"
    assert len(ev.text_normalise(text)) == len(text)
    assert "a headache" in ev.text_normalise(text)


@pytest.mark.parametrize(("text", "span", "phrase_finding", "coded_finding"), [
    # The extractor's mention "hurts", coded with its site as eye pain, lies inside the patient's phrase.
    ("bright light hurts my eyes", "hurts", "photophobia", "eye_pain"),
    ("the light hurts my eyes a lot", "hurts", "photophobia", "eye_pain"),
    ("I can't stand bright light, it hurts", "stand bright light", "photophobia", "eye_pain"),
])
def test_a_code_inside_the_patients_phrase_does_not_add_a_second_finding(text, span, phrase_finding, coded_finding):
    from consult.triage import knowledge_load

    knowledge = knowledge_load()
    matcher = ev.FindingMatcher.build(knowledge.findings)
    codes = {("hpo", code): {coded_finding} for code in knowledge.findings[coded_finding].codes["hpo"]}
    start = text.index(span)
    entity = {"start": start, "end": start + len(span), "type": "SYMPTOM", "text": span,
              "attributes": {"assertion": "present", "codes": [
                  {"system": "HPO", "code": knowledge.findings[coded_finding].codes["hpo"][0]}]}}
    found = {f for f, _, _ in ev.message_findings(text=text, entities=[entity], matcher=matcher, codes=codes,
                                                  assertion_of=lambda t, spans: ["present"] * len(spans))}
    assert phrase_finding in found and coded_finding not in found


def test_a_code_outside_any_phrase_still_states_its_finding():
    from consult.triage import knowledge_load

    knowledge = knowledge_load()
    matcher = ev.FindingMatcher.build(knowledge.findings)
    code = knowledge.findings["eye_pain"].codes["hpo"][0]
    text = "my left one is throbbing"
    entity = {"start": 12, "end": 15, "type": "SYMPTOM", "text": "one", "attributes": {
        "assertion": "present", "codes": [{"system": "HPO", "code": code}]}}
    found = {f for f, _, _ in ev.message_findings(text=text, entities=[entity], matcher=matcher,
                                                  codes={("hpo", code): {"eye_pain"}},
                                                  assertion_of=lambda t, spans: ["present"] * len(spans))}
    assert "eye_pain" in found


@pytest.mark.parametrize(("text", "expected"), [
    ("my 3 year old has had a fever for two days", "for two days"),
    ("my 6 month old baby has been sick since yesterday", "since yesterday"),
    ("she's a 2-year-old and it started 3 days ago", "3 days ago"),
    ("my 4 year old has a rash", None),
    ("I've had it for a week", "for a week"),
])
def test_an_age_is_not_a_duration(text, expected):
    assert ev.duration_read(text) == expected


@pytest.mark.parametrize(("text", "stridor"), [
    # A noise on breathing in, in the words patients and parents use (DDXPlus's simulated patients said the first
    # three and were not heard: the synonyms listed only "high pitched sound when breathing" and the like).
    ("I make a high-pitched noise when I breathe in", True),
    ("There's a squeaky sound when I inhale", True),
    ("I get a high whistling noise breathing in", True),
    ("there's a harsh sound every time she breathes in", True),
    ("he makes a crowing noise", True),
    ("I wheeze when I breathe out", False),  # a wheeze is on breathing out
    ("my breathing sounds normal", False),
])
def test_stridor_is_heard_in_lay_words(text, stridor):
    from consult.triage import knowledge_load

    matcher = ev.FindingMatcher.build(knowledge_load().findings)
    found = {f for f, _, _ in ev.message_findings(text=text, entities=(), matcher=matcher, codes={},
                                                  assertion_of=lambda t, spans: ["present"] * len(spans))}
    assert ("stridor" in found) is stridor, found
