"""Issue 13 end to end with the shipped model: the kinds that need the model to see the resolved text
(abbreviations, misspellings, invisible characters, "a temperature") and the context on its spans."""
from __future__ import annotations

import pytest

from ner_engine.artifacts import DEFAULT_MODEL_DIR
from ner_engine.extractor import Extractor

pytestmark = pytest.mark.slow

if not (DEFAULT_MODEL_DIR / "config.json").exists():
    pytest.skip(f"no shipped model at {DEFAULT_MODEL_DIR}", allow_module_level=True)


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor.load("default", device="cpu")


def found(extractor, text):
    entities = extractor.extract([text])[0]
    assert all(text[e.start:e.end] == e.text for e in entities)
    return {e.text: e for e in entities if e.type in ("SYMPTOM", "DISEASE", "DRUG")}


def codes(entity):
    return {f"{c['system']}:{c['code']}" for c in entity.attributes["codes"]}


def test_abbreviations(extractor):
    first = found(extractor, "SOB when walking upstairs and some CP.")
    assert "HPO:HP:0002094" in codes(first["SOB"]) or "MeSH:D004417" in codes(first["SOB"])
    assert "HPO:HP:0100749" in codes(first["CP"])
    second = found(extractor, "Had n/v all night and a bad HA.")
    assert {"n/v", "HA"} <= set(second)
    assert second["HA"].attributes["attributes"]["severity"]["text"] == "bad"
    assert "MeSH:D014552" in codes(found(extractor, "I think I have another UTI")["UTI"])


def test_misspellings_keep_their_type(extractor):
    entities = found(extractor, "I have a bad hedache and diarrea since monday.")
    assert entities["hedache"].type == "SYMPTOM" and entities["diarrea"].type == "SYMPTOM"
    assert "HPO:HP:0012735" in codes(found(extractor, "I have a really bad coff")["coff"])


def test_invisible_characters_and_a_temperature(extractor):
    assert "headache" in found(extractor, "I have a\u200bheadache")
    temperature = found(extractor, "I dont have a temperature.")["temperature"]
    assert temperature.attributes["assertion"] == "absent" and "HPO:HP:0001945" in codes(temperature)


def test_experiencer_and_hypothetical(extractor):
    rash = found(extractor, "What should I do if my son develops a rash")["rash"]
    assert (rash.attributes["assertion"], rash.attributes["experiencer"]) == ("hypothetical", "other")
