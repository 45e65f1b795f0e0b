"""Attributes: each kind is found, and linked to the entity it modifies (nearest in the same clause)."""
from __future__ import annotations

import pytest

from ner_engine.context.attributes import Attribute, attributes_find, attributes_link, clause_bounds


def linked(text: str, mentions: list[tuple[str, str]], model_spans=()) -> list[dict[str, str]]:
    entities = []
    for mention, entity_type in mentions:
        start = text.index(mention)
        entities.append((start, start + len(mention), entity_type))
    result = attributes_link(text, entities, attributes_find(text, model_spans))
    for entry in result:
        for attribute in entry.values():
            assert text[attribute.start:attribute.end] == attribute.text
    return [{kind: a.text for kind, a in entry.items()} for entry in result]


@pytest.mark.parametrize("text, expected", [
    ("fever for three days", "three days"),
    ("fever since Monday", "since Monday"),
    ("fever 2 weeks ago", "2 weeks ago"),
    ("fever for the past few days", "the past few days"),
    ("a 6-week history of fever", "6-week history"),
    ("fever since yesterday", "since yesterday"),
    ("fever for about 2-3 weeks", "about 2-3 weeks"),
])
def test_duration(text, expected):
    assert linked(text, [("fever", "SYMPTOM")])[0]["duration"] == expected


def test_duration_ignores_ages():
    assert "duration" not in linked("A 45-year-old man with fever", [("fever", "SYMPTOM")])[0]


@pytest.mark.parametrize("text, expected", [
    ("severe headache", "severe"),
    ("really bad headache", "really bad"),
    ("headache, 7/10", "7/10"),
    ("headache, about 8 out of 10", "8 out of 10"),
    ("a mild to moderate headache", "mild to moderate"),
    ("headache, quite bad", "quite bad"),
])
def test_severity(text, expected):
    assert linked(text, [("headache", "SYMPTOM")])[0]["severity"] == expected


@pytest.mark.parametrize("text, expected", [
    ("cough twice a day", "twice a day"),
    ("cough every morning", "every morning"),
    ("cough on and off", "on and off"),
    ("cough 3 times a week", "3 times a week"),
    ("constant cough", "constant"),
])
def test_frequency(text, expected):
    assert linked(text, [("cough", "SYMPTOM")])[0]["frequency"] == expected


def test_frequency_is_not_read_as_duration():
    found = attributes_find("ibuprofen twice a day")
    assert [(a.kind, a.text) for a in found] == [("frequency", "twice a day")]


@pytest.mark.parametrize("text, mention, expected", [
    ("pain in my left knee", "pain", "left knee"),
    ("chest pain", "chest pain", "chest"),          # a site inside the mention itself
    ("my lower back hurts", "hurts", "lower back"),
])
def test_body_site(text, mention, expected):
    assert linked(text, [(mention, "SYMPTOM")])[0]["body_site"] == expected


def test_links_go_to_the_nearest_entity_in_the_clause():
    text = "Really bad headache since Monday, and my left knee hurts twice a day"
    headache, knee = linked(text, [("headache", "SYMPTOM"), ("hurts", "SYMPTOM")])
    assert headache == {"severity": "Really bad", "duration": "since Monday"}
    assert knee == {"body_site": "left knee", "frequency": "twice a day"}


def test_links_do_not_cross_a_contrastive_clause():
    text = "I take ibuprofen twice a day for the past 2 weeks but the headache is mild"
    drug, headache = linked(text, [("ibuprofen", "DRUG"), ("headache", "SYMPTOM")])
    assert drug == {"frequency": "twice a day", "duration": "the past 2 weeks"}
    assert headache == {"severity": "mild"}
    assert len(clause_bounds(text)) == 2


def test_severity_is_not_linked_to_a_drug():
    assert linked("severe ibuprofen", [("ibuprofen", "DRUG")]) == [{}]


def test_model_spans_win_over_rules():
    text = "headache for a couple of days"
    start = text.index("a couple of days")
    found = attributes_find(text, [(start, len(text), "DURATION")])
    assert [(a.kind, a.text, a.source) for a in found] == [("duration", "a couple of days", "model")]
    entry = attributes_link(text, [(0, 8, "SYMPTOM")], found)[0]
    assert entry["duration"] == Attribute("duration", start, len(text), "a couple of days", "model")
    assert entry["duration"].to_dict() == {"text": "a couple of days", "start": start, "end": len(text)}


def test_nothing_to_link():
    assert linked("I feel fine", []) == []
    assert linked("headache", [("headache", "SYMPTOM")]) == [{}]


# ---------------------------------------------------------------- issue 13, kind 10
def _linked(text, mentions):
    from ner_engine.context.attributes import attributes_find, attributes_link

    entities = []
    for mention, entity_type in mentions:
        start = text.index(mention)
        entities.append((start, start + len(mention), entity_type))
    return [{kind: a.text for kind, a in found.items()} for found in attributes_link(text, entities, attributes_find(text))]


@pytest.mark.parametrize("text, mentions, expected", [
    # the issue's inputs
    ("coughing x3 days", [("coughing", "SYMPTOM")], [{"duration": "3 days"}]),
    ("Sharp pain in my left knee for a week", [("pain", "SYMPTOM")], [{"body_site": "left knee", "duration": "a week"}]),
    ("very itchy rash on my arm", [("itchy", "SYMPTOM"), ("rash", "SYMPTOM")], [{"severity": "very"}, {"body_site": "arm"}]),
    ("I take ibuprofen 400mg twice daily", [("ibuprofen", "DRUG")], [{"dose": "400mg", "frequency": "twice daily"}]),
    ("headache since yesterday evening", [("headache", "SYMPTOM")], [{"duration": "since yesterday evening"}]),
    # more of each
    ("fever x 2 days and a cough", [("fever", "SYMPTOM")], [{"duration": "2 days"}]),
    ("sore throat for 3/7", [("sore throat", "SYMPTOM")], [{"body_site": "throat", "duration": "3/7"}]),
    ("cough since monday morning", [("cough", "SYMPTOM")], [{"duration": "since monday morning"}]),
    ("I get headaches twice a week", [("headaches", "SYMPTOM")], [{"frequency": "twice a week"}]),
    ("I've been really dizzy", [("dizzy", "SYMPTOM")], [{"severity": "really"}]),
    ("paracetamol 1g four times a day by mouth", [("paracetamol", "DRUG")],
     [{"dose": "1g", "frequency": "four times a day", "route": "by mouth"}]),
    ("salbutamol 2 puffs as needed", [("salbutamol", "DRUG")], [{"dose": "2 puffs", "frequency": "as needed"}]),
    ("amoxicillin 500 mg TDS for 5 days", [("amoxicillin", "DRUG")],
     [{"dose": "500 mg", "frequency": "TDS", "duration": "5 days"}]),
    ("I inject insulin 10 units twice a day", [("insulin", "DRUG")],
     [{"route": "inject", "dose": "10 units", "frequency": "twice a day"}]),
    ("pain in my mouth", [("pain", "SYMPTOM")], [{"body_site": "mouth"}]),   # a site, not the route "by mouth"
    ("im tired", [("tired", "SYMPTOM")], [{}]),                             # chat "im" is no route
    ("vision 6/7.5 in the left eye", [("vision", "SYMPTOM")], [{"body_site": "left eye"}]),  # acuity, no duration
])
def test_issue13_attributes(text, mentions, expected):
    assert _linked(text, mentions) == expected
