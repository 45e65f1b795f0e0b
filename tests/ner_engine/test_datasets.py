"""Dataset registry: label maps, the fixed MACCROBAT split, JSON-lines round trip, loading errors."""
from __future__ import annotations

import json
import random

import pytest

from ner_engine.datasets import (REGISTRY, SPLITS, dataset_load, documents_read_jsonl, documents_write_jsonl,
                                 maccrobat_split)
from ner_engine.types import ENTITY_TYPES, Document, Span


def test_registry_maps_only_to_project_types():
    expected = {"ncbi-disease", "bc5cdr", "bc5cdr-disease", "bc5cdr-chemical", "maccrobat", "medred", "anatem"}
    assert expected <= set(REGISTRY)
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert set(spec.label_map.values()) <= set(ENTITY_TYPES), name
        assert spec.types == tuple(sorted(set(spec.label_map.values())))
        assert spec.licence and spec.description


def test_registry_label_maps():
    assert REGISTRY["bc5cdr"].label_map == {"Disease": "DISEASE", "Chemical": "DRUG"}
    assert REGISTRY["bc5cdr-chemical"].types == ("DRUG",)
    assert REGISTRY["maccrobat"].label_map["Sign_symptom"] == "SYMPTOM"
    assert REGISTRY["maccrobat"].types == ("ANATOMY", "DISEASE", "DRUG", "DURATION", "SEVERITY", "SYMPTOM")
    assert REGISTRY["medred"].types == ("DISEASE", "DRUG")
    assert REGISTRY["medred"].eval_merge == {"SYMPTOM": "DISEASE"}
    assert REGISTRY["ncbi-disease"].eval_merge == {}


def test_maccrobat_split_is_fixed_160_20_20_disjoint_and_numeric():
    ids = [str(15939911 + 7 * i) for i in range(190)] + [str(9 + i) for i in range(10)]  # mixed digit counts
    split = maccrobat_split(ids)
    assert {name: len(split[name]) for name in SPLITS} == {"train": 160, "dev": 20, "test": 20}
    assert set(split["train"]) | set(split["dev"]) | set(split["test"]) == set(ids)
    assert not set(split["train"]) & set(split["dev"])
    assert not set(split["train"]) & set(split["test"])
    assert not set(split["dev"]) & set(split["test"])
    shuffled = ids[:]
    random.Random(3).shuffle(shuffled)
    assert maccrobat_split(shuffled) == split  # independent of directory order
    ordered = sorted(ids, key=int)
    assert split["test"][:2] == [ordered[0], ordered[10]]  # numeric, not lexicographic, order
    assert split["dev"][0] == ordered[5]


def test_jsonl_round_trip(tmp_path):
    text = "Fièvre — naïve café; headache 🙂 ibuprofen"
    headache = text.index("headache")
    documents = [
        Document("a", text, [Span(headache, headache + 8, "SYMPTOM"), Span(0, 6, "SYMPTOM")], ("SYMPTOM", "DRUG")),
        Document("b", "nothing here", [], ("DISEASE",)),
    ]
    path = tmp_path / "docs.jsonl"
    documents_write_jsonl(documents, path)
    assert "naïve" in path.read_text(encoding="utf-8")  # written as UTF-8, not escaped
    loaded = documents_read_jsonl(path)
    assert [d.id for d in loaded] == ["a", "b"]
    assert loaded[0].text == documents[0].text
    assert loaded[0].spans == sorted(documents[0].spans)
    assert loaded[0].types == ("SYMPTOM", "DRUG")
    assert loaded[1].types == ("DISEASE",)
    assert [loaded[0].span_text(s) for s in loaded[0].spans] == ["Fièvre", "headache"]


def test_jsonl_defaults_and_errors(tmp_path):
    path = tmp_path / "min.jsonl"
    path.write_text('{"text": "cough and fever", "spans": [{"start": 10, "end": 15, "type": "SYMPTOM"}]}\n\n'
                    '{"id": 7, "text": "x"}\n', encoding="utf-8")
    first, second = documents_read_jsonl(path)
    assert first.id == "1" and first.types == ("SYMPTOM",)  # types default to those annotated
    assert second.id == "7" and second.spans == [] and second.types == ()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "short", "spans": [{"start": 2, "end": 9, "type": "DRUG"}]}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: span .* outside the text"):
        documents_read_jsonl(bad)


def test_dataset_load_jsonl_for_every_split(tmp_path):
    path = tmp_path / "docs.jsonl"
    documents_write_jsonl([Document("a", "fever", [Span(0, 5, "SYMPTOM")], ("SYMPTOM",))], path)
    for split in SPLITS:
        [document] = dataset_load(f"jsonl:{path}", split)
        assert document.spans == [Span(0, 5, "SYMPTOM")]


def test_dataset_load_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        dataset_load("ncbi-disease", "validation")
    with pytest.raises(KeyError, match="unknown dataset"):
        dataset_load("no-such-corpus", "train")
    with pytest.raises(FileNotFoundError, match="data directory"):
        dataset_load("ncbi-disease", "train", data_dir=tmp_path / "missing")


def test_dataset_load_maps_labels_with_a_local_data_dir(tmp_path):
    """The registry's loaders on a miniature copy of the MedRed layout: labels map, unknown labels drop."""
    folder = tmp_path / "MedRed" / "train_dev_test"
    folder.mkdir(parents=True)
    (folder / "MedRed_dev.txt").write_text("took B-DRUG\nadvil I-DRUG\nfor O\nmigraine B-DIS\nat B-TIME\n")
    [document] = dataset_load("medred", "dev", data_dir=tmp_path)
    assert document.id == "dev-0"
    found = [(document.span_text(s), s.type) for s in document.spans]
    assert found == [("took advil", "DRUG"), ("migraine", "DISEASE")]
    assert document.types == ("DISEASE", "DRUG")


# --- the real corpora (skipped where ../shared/data is absent) -------------------------------------------

def test_maccrobat_real_split(shared_data):
    loaded = {split: dataset_load("maccrobat", split, data_dir=shared_data) for split in SPLITS}
    assert {split: len(docs) for split, docs in loaded.items()} == {"train": 160, "dev": 20, "test": 20}
    ids = {split: {d.id for d in docs} for split, docs in loaded.items()}
    assert len(ids["train"] | ids["dev"] | ids["test"]) == 200
    again = dataset_load("maccrobat", "dev", data_dir=shared_data)
    assert [d.id for d in again] == [d.id for d in loaded["dev"]]
    for docs in loaded.values():
        for document in docs:
            assert document.types == REGISTRY["maccrobat"].types
            for span in document.spans:
                assert span.type in REGISTRY["maccrobat"].types
                assert 0 <= span.start < span.end <= len(document.text)
    counts = {t: sum(s.type == t for docs in loaded.values() for d in docs for s in d.spans) for t in ENTITY_TYPES}
    assert counts["SEVERITY"] > 300 and counts["DURATION"] > 200 and counts["SYMPTOM"] > 3000


def test_ncbi_disease_real_dev(shared_data):
    documents = dataset_load("ncbi-disease", "dev", data_dir=shared_data)
    assert sum(len(d.spans) for d in documents) == 787  # the README's count of dev mentions
    assert all(d.types == ("DISEASE",) for d in documents)
