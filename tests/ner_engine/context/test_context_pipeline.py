"""entities_contextualise and its wiring into Extractor.extract."""
from __future__ import annotations

import threading

import pytest

from ner_engine.context import ContextPipeline, entities_contextualise
from ner_engine.context.normalisation import Normaliser
from ner_engine.context.vocabularies import Vocabulary
from ner_engine.types import Entity

HPO = Vocabulary("HPO", [("HP:0001945", "Fever", []), ("HP:0002315", "Headache", []), ("HP:0012735", "Cough", [])])
DRUGS = Vocabulary("DrugBank", [("DB01050", "Ibuprofen", ["advil", "nurofen"])])
MESH_DRUGS = Vocabulary("MeSH", [("D007052", "Ibuprofen", ["advil", "nurofen"])])


def toy_pipeline() -> ContextPipeline:
    vocabularies = {"HPO": HPO, "DrugBank": DRUGS, "MeSH-drug": MESH_DRUGS, "MeSH": Vocabulary("MeSH", []),
                    "ICD-10-CM": Vocabulary("ICD-10-CM", [])}
    return ContextPipeline(normaliser=Normaliser(vocabularies=vocabularies))


def entities_of(text: str, mentions: list[tuple[str, str]]) -> list[Entity]:
    found = []
    for mention, entity_type in mentions:
        start = text.index(mention)
        found.append(Entity(start, start + len(mention), entity_type, mention, 0.9))
    return found


def test_every_core_entity_gets_assertion_attributes_and_codes():
    text = "Fever for three days, quite bad. No cough. My mum had headaches. I took nurofen twice a day."
    entities = entities_of(text, [("Fever", "SYMPTOM"), ("cough", "SYMPTOM"), ("headaches", "SYMPTOM"),
                                  ("nurofen", "DRUG")])
    result = entities_contextualise(text, entities, pipeline=toy_pipeline())
    assert result == entities  # annotated in place, same order
    fever, cough, headache, drug = result
    assert fever.attributes["assertion"] == "present"
    assert fever.attributes["attributes"] == {"duration": {"text": "three days", "start": 10, "end": 20},
                                              "severity": {"text": "quite bad", "start": 22, "end": 31}}
    assert fever.attributes["codes"] == [{"system": "HPO", "code": "HP:0001945", "name": "Fever", "score": 1.0}]
    assert cough.attributes["assertion"] == "absent"
    assert headache.attributes["assertion"] == "family"
    assert headache.attributes["codes"][0]["code"] == "HP:0002315"
    assert drug.attributes["attributes"]["frequency"]["text"] == "twice a day"
    assert [(c["system"], c["code"]) for c in drug.attributes["codes"]] == [("DrugBank", "DB01050"), ("MeSH", "D007052")]
    assert fever.to_dict()["assertion"] == "present"


def test_uncoded_entity_and_other_types():
    text = "xyzzy pain for 2 days"
    entities = entities_of(text, [("xyzzy", "SYMPTOM"), ("2 days", "DURATION")])
    symptom, duration = entities_contextualise(text, entities, pipeline=toy_pipeline())
    assert symptom.attributes["codes"] == []
    assert symptom.attributes["attributes"]["duration"]["text"] == "2 days"
    assert duration.attributes == {}  # model attribute spans feed the linking and stay as they are
    assert entities_contextualise("nothing", [], pipeline=toy_pipeline()) == []


def test_normalisation_can_be_switched_off():
    pipeline = ContextPipeline(normalise=False)
    [entity] = pipeline.contextualise("no fever", entities_of("no fever", [("fever", "SYMPTOM")]))
    assert entity.attributes == {"assertion": "absent", "experiencer": "patient", "attributes": {}, "codes": []}


def test_concurrent_calls_share_one_pipeline():
    pipeline = toy_pipeline()
    errors, results = [], []

    def work():
        try:
            text = "no fever but a bad headache"
            entities = entities_of(text, [("fever", "SYMPTOM"), ("headache", "SYMPTOM")])
            results.append([e.attributes["assertion"] for e in pipeline.contextualise(text, entities)])
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == [["absent", "present"]] * 8


def test_extractor_contextualises_by_default(request):
    try:
        trained = request.getfixturevalue("trained")
    except pytest.FixtureLookupError:
        pytest.skip("needs the tiny trained model fixture of tests/ner_engine/conftest.py")
    from ner_engine.extractor import Extractor

    extractor = Extractor.load(trained["best"], device="cpu")
    assert isinstance(extractor.context, ContextPipeline)
    extractor.context = toy_pipeline()  # the real vocabularies are covered in test_context_normalisation
    [entities] = extractor.extract(["No dizziness today."])
    assert [(e.text, e.attributes["assertion"]) for e in entities] == [("dizziness", "absent")]

    plain = Extractor.load(trained["best"], device="cpu", context=False)
    assert plain.context is None
    [entities] = plain.extract(["No dizziness today."])
    assert [(e.text, e.attributes) for e in entities] == [("dizziness", {})]
