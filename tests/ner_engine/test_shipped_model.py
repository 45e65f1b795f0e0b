"""The committed default model: loads offline, and reproduces the scores its model card claims."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ner_engine.artifacts import DEFAULT_MODEL_DIR
from ner_engine.datasets import DEFAULT_DATA_DIR, REGISTRY, dataset_load
from ner_engine.evaluation import spans_evaluate
from ner_engine.extractor import Extractor
from ner_engine.triplets import templates_from_dict, templates_load
from ner_engine.types import Span

pytestmark = pytest.mark.slow

if not (DEFAULT_MODEL_DIR / "config.json").exists():
    pytest.skip(f"no shipped model at {DEFAULT_MODEL_DIR}", allow_module_level=True)


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor.load("default", device="cpu")


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((DEFAULT_MODEL_DIR / "model_card.json").read_text())


def test_card_states_the_artifact_size_and_cost(card):
    assert card["cost"]["artifact_bytes"] == (DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size
    for key in ("total_parameters", "trainable_parameters", "training_wall_time_s", "peak_memory_mb", "artifact_bytes"):
        assert card["cost"][key], key


def test_shipped_templates_are_the_source_templates_of_its_types():
    """ner_engine/templates.json is the one source of the hard templates: every type the library has a query for
    (it seeds the app's template admin, which may offer a type a model lacks: ANATOMY). A model folder's
    templates.json is the copy training saved of it for the types that model was trained on."""
    trained_types = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())["entity_types"]
    saved = templates_from_dict(json.loads((DEFAULT_MODEL_DIR / "templates.json").read_text()))
    source = templates_load()
    assert list(saved) == trained_types
    assert saved == {entity_type: source[entity_type] for entity_type in trained_types}
    assert set(source) > set(saved)


def test_extracts_patient_language(extractor):
    text = "I've had a headache and fever for two days, no medications"
    found = extractor.extract([text])[0]
    assert all(text[e.start : e.end] == e.text for e in found)
    symptoms = {e.text.lower() for e in found if e.type == "SYMPTOM"}
    assert {"headache", "fever"} <= symptoms


def test_ncbi_disease_test_f1_matches_model_card(extractor, card):
    if not Path(DEFAULT_DATA_DIR).exists():
        pytest.skip(f"corpora not present at {DEFAULT_DATA_DIR}")
    documents = dataset_load("ncbi-disease", "test")
    predicted = extractor.extract([d.text for d in documents], types=list(REGISTRY["ncbi-disease"].types))
    report = spans_evaluate([d.spans for d in documents], [[Span(e.start, e.end, e.type) for e in p] for p in predicted])
    claimed = card["test"]["ncbi-disease"]["strict"]["micro"]["f1"]
    assert abs(report.strict["micro"].f1 - claimed) <= 0.005, (report.strict["micro"].f1, claimed)
