"""Issue 13 kinds 7 (abbreviations), 8 (misspellings) and 11 (invisible characters): what the model reads, the
offsets back into the patient's text, and the codes the mentions get."""
from __future__ import annotations

import pytest

from ner_engine.context import ContextPipeline
from ner_engine.context.normalisation import Normaliser
from ner_engine.context.spelling import lexicon_load, phonetic_key, spelling_correct
from ner_engine.context.surface import (SurfaceView, abbreviations_load, candidates_original, format_edits,
                                        mention_resolve, surface_view)
from ner_engine.types import Entity


@pytest.fixture(scope="module")
def pipeline():
    return ContextPipeline(normaliser=Normaliser(dictionaries=(), embeddings="off"))


def contextualise(pipeline, text, mentions):
    entities = []
    for mention, entity_type in mentions:
        start = text.index(mention)
        entities.append(Entity(start, start + len(mention), entity_type, mention, 0.9))
    return pipeline.contextualise(text, entities)


def codes(entity) -> set[str]:
    return {f"{c['system']}:{c['code']}" for c in entity.attributes["codes"]}


# ---------------------------------------------------------------- kind 7: abbreviations
@pytest.mark.parametrize("text, expected", [
    ("SOB when walking upstairs and some CP.", "shortness of breath when walking upstairs and some chest pain."),
    ("Had n/v all night and a bad HA.", "Had nausea and vomiting all night and a bad headache."),
    ("I think I have another UTI", "I think I have another urinary tract infection"),
    ("No d&v but some SOB", "No diarrhoea and vomiting but some shortness of breath"),
    ("my dad had an MI and now has AF", "my dad had an myocardial infarction and now has atrial fibrillation"),
    ("my son has CP since birth", "my son has cerebral palsy since birth"),   # the sense the message chooses
    ("ha ha, I mean it", "ha ha, I mean it"),           # upper-case-only short forms leave words alone
    ("I sob every night", "I sob every night"),          # "sob" only near breathing words
    ("I dont have a temperature.", "I dont have a fever."),
])
def test_abbreviations_are_expanded_for_the_model(text, expected):
    assert surface_view(text, spelling=False).text == expected


def test_spans_map_back_to_the_abbreviation():
    view = surface_view("SOB when walking upstairs and some CP.")
    start = view.text.index("shortness of breath")
    assert view.span_original(start, start + len("shortness of breath")) == (0, 3)
    breath = view.text.index("breath")           # a model span inside the expansion is the whole short form
    assert view.span_original(breath, breath + 6) == (0, 3)
    chest = view.text.index("chest pain")
    assert view.original[slice(*view.span_original(chest, chest + 10))] == "CP"


@pytest.mark.parametrize("text, mention, entity_type, code", [
    ("SOB when walking upstairs and some CP.", "SOB", "SYMPTOM", "HPO:HP:0002094"),
    ("SOB when walking upstairs and some CP.", "CP", "SYMPTOM", "HPO:HP:0100749"),
    ("Had n/v all night and a bad HA.", "HA", "SYMPTOM", "HPO:HP:0002315"),
    ("Had n/v all night and a bad HA.", "n/v", "SYMPTOM", "HPO:HP:0002017"),
    ("I think I have another UTI", "UTI", "DISEASE", "MeSH:D014552"),
    ("They are checking me for a DVT", "DVT", "DISEASE", "HPO:HP:0002625"),
    ("My mum has T2DM", "T2DM", "DISEASE", "ICD-10-CM:E11"),
])
def test_abbreviations_are_coded(pipeline, text, mention, entity_type, code):
    [entity] = contextualise(pipeline, text, [(mention, entity_type)])
    assert code in codes(entity)


def test_every_abbreviation_row_is_sourced_and_its_code_is_reached():
    normaliser = Normaliser(dictionaries=(), embeddings="off")
    rows = abbreviations_load()
    assert len(rows) >= 60 and len({r.id for r in rows}) == len(rows)
    for row in rows:
        assert row.source and row.type in ("SYMPTOM", "DISEASE", "DRUG", "FINDING"), row
        if row.code != "-":
            found = normaliser.normalise(row.expansion, "SYMPTOM" if row.type == "FINDING" else row.type)
            assert row.code in {f"{c['system']}:{c['code']}" for c in found}, row


# ---------------------------------------------------------------- kind 8: misspellings
@pytest.mark.parametrize("typed, meant", [
    ("hedache", "headache"), ("diarrea", "diarrhoea"), ("coff", "cough"), ("nauseus", "nauseous"),
    ("temprature", "temperature"), ("vomitting", "vomiting"), ("pnuemonia", "pneumonia"), ("migrane", "migraine"),
    ("asma", "asthma"), ("Hedache", "Headache"), ("sholder", "shoulder"), ("ibuprofin", "ibuprofen"),
])
def test_misspellings_are_corrected(typed, meant):
    assert spelling_correct(typed) == meant


@pytest.mark.parametrize("word", ["coffee", "cuff", "really", "becuase", "tomorrow", "thanks", "headache", "cough"])
def test_known_and_unrelated_words_are_left_alone(word):
    assert spelling_correct(word) is None


def test_phonetic_keys():
    assert phonetic_key("coff") == phonetic_key("cough") == "KF"
    assert phonetic_key("nauseus") == phonetic_key("nauseous")
    assert phonetic_key("fever") != phonetic_key("cough")


def test_lexicon_rows_are_typed_and_sourced():
    rows = lexicon_load()
    assert len(rows) >= 250
    assert all(r["type"] in ("symptom", "disease", "drug", "anatomy") and r["source"] for r in rows)


@pytest.mark.parametrize("text, mention, typed_as, meant_type, code", [
    ("I have a bad hedache and diarrea since monday.", "hedache", "DRUG", "SYMPTOM", "HPO:HP:0002315"),
    ("I have a bad hedache and diarrea since monday.", "diarrea", "DRUG", "SYMPTOM", "HPO:HP:0002014"),
    ("I have a really bad coff", "coff", "SYMPTOM", "SYMPTOM", "HPO:HP:0012735"),
    ("feeling nauseus", "feeling nauseus", "DISEASE", "SYMPTOM", "ICD-10-CM:R11.0"),
    ("i have had vomitting since last night", "vomitting", "DRUG", "SYMPTOM", "HPO:HP:0002013"),
])
def test_typos_are_coded_and_do_not_flip_the_type(pipeline, text, mention, typed_as, meant_type, code):
    [entity] = contextualise(pipeline, text, [(mention, typed_as)])
    assert entity.type == meant_type
    assert code in codes(entity)


def test_a_real_medicine_stays_a_drug(pipeline):
    [entity] = contextualise(pipeline, "I took ibuprofin for it", [("ibuprofin", "DRUG")])
    assert entity.type == "DRUG" and "DrugBank:DB01050" in codes(entity)


def test_mention_resolve():
    assert mention_resolve("bad hedache") == "bad headache"
    assert mention_resolve("SOB") == "shortness of breath"
    assert mention_resolve("wheezing") == "wheezing"


# ---------------------------------------------------------------- kind 11: invisible characters
@pytest.mark.parametrize("text, model_reads", [
    ("I have a\u200bheadache", "I have a headache"),            # zero-width space: a word break
    ("I have a head\u00adache", "I have a headache"),            # soft hyphen
    ("no\u200c fever\u2060 today\ufeff", "no fever today"),    # ZWNJ, word joiner, BOM
    ("I have a\u00a0rash", "I have a rash"),                     # no-break space
    ("\u202eI have a cough", "I have a cough"),                  # bidi override
])
def test_format_characters_are_removed_for_the_model(text, model_reads):
    assert surface_view(text).text == model_reads


def test_offsets_stay_in_the_original_text():
    text = "no\u200c fever, a head\u00adache"
    view = surface_view(text)
    start = view.text.index("headache")
    original = view.span_original(start, start + len("headache"))
    assert text[slice(*original)] == "head\u00adache"
    assert view.span_view(*original) == (start, start + len("headache"))
    assert len(format_edits(text)) == 2


def test_assertion_and_attributes_read_through_invisible_characters(pipeline):
    text = "I haven\u200ct been vomiting. Head\u00adache for 2\u2009days"
    vomiting, headache = contextualise(pipeline, text, [("vomiting", "SYMPTOM"), ("Head\u00adache", "SYMPTOM")])
    assert vomiting.attributes["assertion"] == "absent"
    assert headache.attributes["assertion"] == "present"
    duration = headache.attributes["attributes"]["duration"]
    assert text[duration["start"]:duration["end"]] == duration["text"] == "2\u2009days"
    assert "HPO:HP:0002315" in codes(headache)


def test_candidates_map_back_and_merge():
    class Candidate:
        def __init__(self, start, end, type_, score):
            self.start, self.end, self.type, self.score = start, end, type_, score

    view = surface_view("Had n/v all night")
    nausea = view.text.index("nausea")
    vomiting = view.text.index("vomiting")
    found = candidates_original(view, [Candidate(nausea, nausea + 6, "SYMPTOM", 0.7),
                                       Candidate(vomiting, vomiting + 8, "SYMPTOM", 0.9)])
    assert [(s, e, c.score) for s, e, c in found] == [(4, 7, 0.9)]
    assert SurfaceView("abc", []).span_original(1, 2) == (1, 2)
