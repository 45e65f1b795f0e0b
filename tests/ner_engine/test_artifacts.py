"""Model folders (ner_engine.artifacts): save and load round trips, the delta-int8 format, load errors."""
from __future__ import annotations

import json

import pytest
import torch

from ner_engine.artifacts import DEFAULT_MODEL_DIR, artifact_load, artifact_save, model_dir_resolve
from ner_engine.extractor import Extractor


def as_spans(results):
    return [[(e.start, e.end, e.type, e.text, e.score) for e in entities] for entities in results]


def test_artifact_round_trip_gives_identical_predictions(tiny_extractor, tiny, tmp_path):
    texts = [text for text, _ in tiny.sentences] + ["Cough, fever and aspirin; then insulin."]
    before = as_spans(tiny_extractor.extract(texts))
    artifact_save(tmp_path / "copy", tiny_extractor.model, tiny_extractor.templates,
                  card={"name": "copy", "version": "copy-1"})
    copy = Extractor.load(tmp_path / "copy", device="cpu", context=False)
    assert copy.model_version == "copy-1"
    assert as_spans(copy.extract(texts)) == before
    model, templates = artifact_load(tmp_path / "copy")
    for name, tensor in tiny_extractor.model.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    assert templates == tiny_extractor.templates


def test_delta_artifact_on_the_pretrained_backbone_is_small_and_faithful(tmp_path, tiny):
    # Full fine-tuning of the embedded MiniLM with frozen embeddings and bottom layer: the artifact holds only
    # int8 differences from the pip-installed encoder, so it stays under 10 MB, and reloads within one
    # quantisation step of the trained weights.
    from safetensors import safe_open

    from ner_engine.artifacts import model_build
    from ner_engine.modeling import PromptBioMRCConfig
    from ner_engine.triplets import templates_load

    config = PromptBioMRCConfig(entity_types=list(tiny.types), freeze_embeddings=True, frozen_layers=1)
    model = model_build(config)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 1e-3)
    shipped = templates_load(None)
    tiny_templates = {t: shipped[t] for t in tiny.types}
    artifact_save(tmp_path / "delta", model, tiny_templates)
    weights = tmp_path / "delta" / "model.safetensors"
    assert weights.stat().st_size < 10_000_000
    with safe_open(str(weights), framework="pt") as stored:
        assert stored.metadata()["format"] == "delta-int8"
        names = set(stored.keys())
    assert not any(name.startswith(("encoder.embeddings.", "encoder.encoder.layer.0.")) for name in names)
    assert "encoder.encoder.layer.5.attention.self.query.weight.delta_scale" in names
    loaded, templates = artifact_load(tmp_path / "delta")
    assert templates == tiny_templates
    trained, reloaded = model.state_dict(), loaded.state_dict()
    assert set(trained) == set(reloaded)
    for name, tensor in trained.items():
        # One int8 step of a row is max|delta| / 127; the perturbation above is ~1e-3 * 4 standard deviations.
        assert torch.allclose(tensor, reloaded[name], atol=1e-4), name


def test_artifact_load_errors(tmp_path, trained):
    with pytest.raises(FileNotFoundError, match="not a Prompt-bioMRC model"):
        artifact_load(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.safetensors", "encoder_config.json", "templates.json"):
        (broken / name).write_bytes((trained["best"] / name).read_bytes())
    config = json.loads((trained["best"] / "config.json").read_text())
    config["entity_types"] = ["SYMPTOM"]  # one type fewer: the soft-prompt table no longer fits
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(RuntimeError, match="size mismatch"):
        artifact_load(broken)
    assert model_dir_resolve("default") == DEFAULT_MODEL_DIR
    assert model_dir_resolve(tmp_path) == tmp_path
