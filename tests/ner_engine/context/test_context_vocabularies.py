"""Vocabularies (ner_engine.context.vocabularies): indexes of a Vocabulary, synonyms, copies, and which
vocabulary a system key loads."""
from __future__ import annotations

from ner_engine.context import vocabularies
from ner_engine.context.vocabularies import Vocabulary, vocabularies_build, vocabulary_key


def test_indexes_and_synonyms():
    vocabulary = Vocabulary("HPO", [("HP:1", "Abdominal pain", ["Stomach pains"]), ("HP:2", "Fibrillation, Atrial", [])])
    assert vocabulary.exact["stomach pains"] == [0]
    assert vocabulary.stemmed["stomach pain"] == [0]
    assert vocabulary.unordered["abdominal pain"] == [0]
    assert vocabulary.heads["fibrillation atrial"] == "fibrillation"  # a term written inverted
    copy = vocabulary.copy()
    assert copy.add_synonyms({"tummy ache": "HP:1", "unknown": "HP:9"}) == 1
    assert copy.preferred["tummy ache"] == 0 and "tummy ache" not in vocabulary.stemmed


def test_system_keys(monkeypatch):
    assert vocabulary_key("DRUG", "MeSH") == "MeSH-drug" and vocabulary_key("DISEASE", "MeSH") == "MeSH"
    omim = vocabularies_build("OMIM")  # only dictionaries provide it: it starts empty
    assert list(omim) == ["OMIM"] and omim["OMIM"].concepts == []
    toy = Vocabulary("HPO", [("HP:1", "Headache", [])])
    monkeypatch.setitem(vocabularies.BUILDERS, "HPO", lambda: toy)
    assert vocabularies_build("HPO") == {"HPO": toy}
