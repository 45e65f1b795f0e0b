"""Training end to end on a tiny random-config BERT: overfit six sentences, artifacts, model card, resume."""
from __future__ import annotations

import json

import pytest
import torch

from ner_engine.artifacts import artifact_load
from ner_engine.model_card import model_card_markdown, model_card_read
from ner_engine.training import TrainConfig, config_override, train


def test_tiny_model_overfits_to_strict_f1_one(trained, tiny):
    card = trained["card"]
    history = card["history"]
    assert history, "no epoch ran"
    assert max(h["dev_f1"] for h in history) == 1.0
    assert history[-1]["loss"] < history[0]["loss"]
    [dev] = card["dev"].values()
    assert dev["strict"]["micro"]["f1"] == 1.0
    assert set(dev["strict"]) == {"SYMPTOM", "DRUG", "micro"}
    assert dev["strict"]["micro"]["gold"] == sum(len(m) for _, m in tiny.sentences)
    assert dev["span_mismatch"] == 0 and dev["entity_confusion"] == 0
    # Early stopping: patience 10 ends the run well before 40 epochs once F1 = 1.0 cannot improve.
    assert len(history) < trained["config"].epochs


def test_best_artifact_and_model_card(trained):
    best = trained["best"]
    for name in ("model.safetensors", "config.json", "encoder_config.json", "templates.json", "dev_scores.json",
                 "model_card.json", "model_card.md"):
        assert (best / name).exists(), name
    card = model_card_read(best)
    assert card["version"] == "tiny-test-1"
    assert card["recipe"]["model"]["prompt_mode"] == "hard"
    assert card["recipe"]["datasets"] == [f"jsonl:{trained['jsonl']}"]
    cost = card["cost"]
    assert cost["trainable_parameters"] == cost["total_parameters"] > 0  # full fine-tuning
    assert cost["artifact_bytes"] == (best / "model.safetensors").stat().st_size
    assert cost["device"] == "cpu" and cost["training_wall_time_s"] > 0
    assert card["test"] == {}
    assert card["data"] == []  # a jsonl file is not a registered corpus with a licence line
    markdown = (best / "model_card.md").read_text()
    assert markdown == model_card_markdown(card)
    assert "# Prompt-bioMRC (tiny-test-1)" in markdown and "| SYMPTOM | 1.0000 | 1.0000 | 1.0000 |" in markdown
    templates = json.loads((best / "templates.json").read_text())
    assert set(templates) == {"SYMPTOM", "DRUG"}
    assert all(t["soft_prompt_length"] == 4 for t in templates.values())  # follows the model config
    assert json.loads((trained["output"] / "train_config.json").read_text())["epochs"] == trained["config"].epochs


def test_best_artifact_reloads_with_the_same_weights(trained):
    model, templates = artifact_load(trained["best"])
    assert not model.training
    assert model.config.entity_types == ["SYMPTOM", "DRUG"]
    assert model.encoder.config.hidden_size == 32  # rebuilt from encoder_config.json, not the pretrained MiniLM
    again, _ = artifact_load(trained["best"])
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name


def test_test_datasets_are_scored_into_the_card(tmp_path, train_jsonl, bert_config, tiny):
    config = tiny.train_config(train_jsonl, tmp_path / "run", epochs=1, test_datasets=[f"jsonl:{train_jsonl}"],
                               model=tiny.model_config(prompt_mode="plain"))
    card = train(config, encoder_config=bert_config, progress=False)
    [test] = card["test"].values()
    assert test["documents"] == len(tiny.sentences)
    assert test["strict"]["micro"]["gold"] == sum(len(m) for _, m in tiny.sentences)
    assert model_card_read(tmp_path / "run" / "best")["test"] == card["test"]


def test_resume_from_a_checkpoint(tmp_path, train_jsonl, bert_config, tiny):
    # Hybrid prompts with a soft-prompt length other than the shipped templates' 8.
    model = tiny.model_config(prompt_mode="hybrid", soft_prompt_length=2)
    output = tmp_path / "run"
    first = train(tiny.train_config(train_jsonl, output, epochs=2, patience=100, model=model),
                  encoder_config=bert_config, progress=False)
    assert [h["epoch"] for h in first["history"]] == [1, 2]
    checkpoint = torch.load(output / "checkpoint.pt", weights_only=False)
    assert checkpoint["state"]["epoch"] == 2 and checkpoint["state"]["step_in_epoch"] == 0
    assert checkpoint["model"]["soft_prompt.vectors"].shape == (2, 2, 32)

    resumed = train(tiny.train_config(train_jsonl, output, epochs=3, patience=100, model=model), resume=True,
                    encoder_config=bert_config, progress=False)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed["history"][:2] == first["history"]  # restored from the checkpoint, not retrained
    after = torch.load(output / "checkpoint.pt", weights_only=False)
    assert after["state"]["epoch"] == 3
    assert not torch.equal(after["model"]["head.start.weight"], checkpoint["model"]["head.start.weight"])

    # A finished run resumes to nothing more; without --resume it starts over.
    finished = train(tiny.train_config(train_jsonl, output, epochs=3, patience=100, model=model), resume=True,
                     encoder_config=bert_config, progress=False)
    assert finished["history"] == resumed["history"]
    fresh = train(tiny.train_config(train_jsonl, output, epochs=1, patience=100, model=model),
                  encoder_config=bert_config, progress=False)
    assert [h["epoch"] for h in fresh["history"]] == [1]


def test_periodic_dev_evaluation_and_max_steps_resume_inside_the_epoch(tmp_path, train_jsonl, bert_config, tiny):
    # Six sentences x two types at batch 2: 6 steps an epoch. Stopping at step 4 keeps the run inside epoch 1.
    output = tmp_path / "run"
    config = tiny.train_config(train_jsonl, output, epochs=2, patience=100, eval_every=2, max_steps=4)
    first = train(config, encoder_config=bert_config, progress=False)
    assert [(h["epoch"], h["step"]) for h in first["history"]] == [(1, 2), (1, 4)]
    state = torch.load(output / "checkpoint.pt", weights_only=False)["state"]
    assert (state["epoch"], state["step_in_epoch"], state["step"]) == (0, 4, 4)

    config = tiny.train_config(train_jsonl, output, epochs=2, patience=100, eval_every=2, max_steps=None)
    resumed = train(config, resume=True, encoder_config=bert_config, progress=False)
    assert [(h["epoch"], h["step"]) for h in resumed["history"]] == [(1, 2), (1, 4), (1, 6), (2, 8), (2, 10),
                                                                      (2, 12)]


def test_training_starts_from_another_models_weights(tmp_path, trained, train_jsonl, bert_config, tiny):
    config = tiny.train_config(train_jsonl, tmp_path / "run", epochs=1, learning_rate=0.0, head_learning_rate=0.0,
                               init_from=str(trained["best"]))
    card = train(config, encoder_config=bert_config, progress=False)
    assert card["history"][0]["dev_f1"] == 1.0  # nothing learnt here (learning rate 0): the donor's weights
    donor, _ = artifact_load(trained["best"])
    copy, _ = artifact_load(tmp_path / "run" / "best")
    for name, tensor in donor.state_dict().items():
        assert torch.equal(tensor, copy.state_dict()[name]), name
    mismatched = tiny.train_config(train_jsonl, tmp_path / "other", epochs=1, init_from=str(trained["best"]),
                                   model=tiny.model_config(entity_types=["DRUG"]))
    with pytest.raises(ValueError, match="entity types"):
        train(mismatched, encoder_config=bert_config, progress=False)


def test_train_config_from_dict_and_overrides():
    data = config_override({"model": {"prompt_mode": "hybrid"}, "epochs": 2},
                           ["epochs=5", "model.prompt_mode=soft", "model.lora_rank=8", "datasets=[\"jsonl:x\"]",
                            "version=v-2"])
    config = TrainConfig.from_dict(data)
    assert (config.epochs, config.model.prompt_mode, config.model.lora_rank) == (5, "soft", 8)
    assert config.datasets == ["jsonl:x"] and config.version == "v-2"
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ValueError, match="not key=value"):
        config_override({}, ["epochs"])


def test_shipped_default_config_parses():
    from pathlib import Path

    import ner_engine

    path = Path(ner_engine.__file__).with_name("configs") / "default.json"
    config = TrainConfig.from_dict(json.loads(path.read_text()))
    assert config.model.entity_types and config.datasets


def test_time_budget_stops_and_resume_continues(tmp_path, train_jsonl, bert_config, tiny):
    """A sitting stops once its time budget is spent (checkpoint + dev evaluation), and --resume continues
    from that step, using the cached features."""
    from ner_engine.training import train

    cache = tmp_path / "features"
    config = tiny.train_config(train_jsonl, tmp_path / "run", epochs=50, patience=100, time_budget=0.0,
                               feature_cache=str(cache), model=tiny.model_config(query_mode="one_pass",
                                                                                 max_length=128))
    card = train(config, encoder_config=bert_config, progress=False)
    assert [h["step"] for h in card["history"]] == [1]  # one step, then the budget was spent
    assert len(list(cache.glob("*.pkl"))) == 1
    config.time_budget = None
    config.max_steps = 4
    card = train(config, resume=True, encoder_config=bert_config, progress=False)
    assert card["history"][0]["step"] == 1 and card["history"][-1]["step"] == 4
    assert len(list(cache.glob("*.pkl"))) == 1  # same inputs -> the same cached features


def test_feature_cache_key_follows_the_prompts(tmp_path, train_jsonl, tiny, tokenizer):
    from ner_engine.training import _training_examples, builder_make
    from ner_engine.triplets import QueryTemplate

    config = tiny.train_config(train_jsonl, tmp_path / "run", feature_cache=str(tmp_path / "features"),
                               model=tiny.model_config(query_mode="one_pass", max_length=128))
    templates = {t: QueryTemplate(t, t.lower(), "find every {anchor}", 4) for t in tiny.types}
    first = _training_examples(config, builder_make(config.model, tokenizer, templates))
    again = _training_examples(config, builder_make(config.model, tokenizer, templates))
    assert [w.input_ids for w in again] == [w.input_ids for w in first]
    reworded = {t: QueryTemplate(t, t.lower(), "list each {anchor}", 4) for t in tiny.types}
    _training_examples(config, builder_make(config.model, tokenizer, reworded))
    assert len(list((tmp_path / "features").glob("*.pkl"))) == 2


def test_optimizer_groups_and_schedule():
    from ner_engine.training import _optimizer_make

    model = torch.nn.Module()
    model.encoder = torch.nn.Linear(2, 2)
    model.head = torch.nn.Linear(2, 1)
    config = TrainConfig(batch_size=10, epochs=3, learning_rate=1e-4, head_learning_rate=1e-2, warmup_ratio=0.1,
                         max_steps=20)
    optimizer, scheduler = _optimizer_make(config, model, num_examples=95)  # 10 steps an epoch, capped at 20
    encoder_group, head_group = optimizer.param_groups
    assert [p.shape for p in encoder_group["params"]] == [p.shape for p in model.encoder.parameters()]
    assert [p.shape for p in head_group["params"]] == [p.shape for p in model.head.parameters()]
    factors = []
    for _ in range(20):
        factors.append(head_group["lr"] / 1e-2)
        optimizer.step()
        scheduler.step()
    assert factors[:3] == pytest.approx([0.5, 1.0, 1.0])  # warm-up of int(20 * 0.1) = 2 steps
    assert factors[-1] == pytest.approx(1 / 18) and head_group["lr"] == 0.0  # linear decay to 0 at step 20
    assert encoder_group["lr"] == 0.0
