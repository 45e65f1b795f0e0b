"""The Prompt-bioMRC network on tiny random BERT encoders: shapes, soft prompts, LoRA, and learning."""
from __future__ import annotations

import pytest
import torch

from ner_engine.batching import length_batches, triplets_collate
from ner_engine.artifacts import model_build
from ner_engine.modeling import PromptBioMRC, PromptBioMRCConfig, trainable_state_dict
from ner_engine.triplets import QueryTemplate, TripletBuilder, documents_to_triplets
from ner_engine.types import Document, Span

TEMPLATES = {
    "SYMPTOM": QueryTemplate("SYMPTOM", "symptom", "find every {anchor} such as pain", soft_prompt_length=4),
    "DRUG": QueryTemplate("DRUG", "drug", "find every {anchor} or medicine", soft_prompt_length=4),
}


@pytest.fixture
def setup(tokenizer, bert_config, tiny):
    """setup(mode, **config overrides) -> (tiny model with soft prompts initialised, its TripletBuilder)."""
    def build(mode="hybrid", **overrides):
        torch.manual_seed(0)
        config = tiny.model_config(prompt_mode=mode, **overrides)
        model = model_build(config, encoder_config=bert_config)
        builder = TripletBuilder(tokenizer, TEMPLATES, config.entity_types, prompt_mode=mode,
                                 max_length=config.max_length, window_overlap=config.window_overlap)
        model.soft_prompt_init([builder.soft_init_ids(t) for t in config.entity_types])
        return model, builder

    return build


@pytest.fixture
def documents(tiny):
    return tiny.documents()


def batch_for(model, builder, documents, with_labels=False):
    triplets = documents_to_triplets(builder, documents)
    return triplets, triplets_collate(triplets, pad_id=0, max_span_width=model.config.max_span_width,
                                      with_labels=with_labels)


def test_output_shapes_and_loss(setup, documents, tokenizer):
    model, builder = setup()
    triplets, batch = batch_for(model, builder, documents[:3], with_labels=True)
    size, length = batch["input_ids"].shape
    assert size == 6 and length == max(len(t.input_ids) for t in triplets)
    output = model(**batch)
    assert output.start_logits.shape == (size, length)
    assert output.end_logits.shape == (size, length)
    assert output.match_logits.shape == (size, length, model.config.max_span_width)
    assert output.loss.ndim == 0 and torch.isfinite(output.loss) and output.loss > 0
    labels = {k: v for k, v in batch.items() if not k.endswith("_labels")}
    assert model(**labels).loss is None


def test_collate_labels_and_masks(setup, documents, tokenizer):
    model, builder = setup(max_span_width=2)
    document = Document("d", "Severe back pain and hydrochlorothiazide", [Span(7, 16, "SYMPTOM"), Span(21, 40, "DRUG")],
                        ("SYMPTOM", "DRUG"))
    triplets, batch = batch_for(model, builder, [document], with_labels=True)
    for row, triplet in enumerate(triplets):
        n = len(triplet.input_ids)
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (batch["input_ids"].shape[1] - n)
        assert batch["context_mask"][row, :n].tolist() == [o[0] >= 0 for o in triplet.offsets]
        [(start, end)] = triplet.gold_spans
        assert batch["start_labels"][row].nonzero().flatten().tolist() == [start]
        assert batch["end_labels"][row].nonzero().flatten().tolist() == [end]
        # A mention wider than max_span_width keeps its start/end labels but gets no match label.
        assert batch["match_labels"][row].sum().item() == (1 if end - start < 2 else 0)
    assert batch["match_labels"][0, triplets[0].gold_spans[0][0], 1] == 1  # "back pain": two tokens
    assert batch["match_labels"][1].sum() == 0  # the drug is several word pieces wide


def capture_encoder_inputs(model):
    captured = {}

    def hook(module, args, kwargs):
        captured["inputs_embeds"] = kwargs["inputs_embeds"].detach().clone()

    model.encoder.register_forward_pre_hook(hook, with_kwargs=True)
    return captured


@pytest.mark.parametrize("mode", ["soft", "hybrid"])
def test_soft_prompt_replaces_embeddings_at_soft_positions(setup, documents, tokenizer, mode):
    model, builder = setup(mode)
    model.eval()
    with torch.no_grad():
        model.soft_prompt.vectors.normal_()  # distinguishable from every token embedding
    captured = capture_encoder_inputs(model)
    triplets, batch = batch_for(model, builder, documents[:2])
    output = model(**batch)
    embeds = captured["inputs_embeds"]
    words = model.input_embeddings()(batch["input_ids"])
    soft = batch["soft_mask"].bool()
    assert soft.sum() == 4 * len(triplets)
    for row, triplet in enumerate(triplets):
        positions = soft[row].nonzero().flatten().tolist()
        assert positions == [1, 2, 3, 4]
        for slot, position in enumerate(positions):
            assert torch.equal(embeds[row, position], model.soft_prompt.vectors[triplet.type_index, slot])
    assert torch.equal(embeds[~soft], words[~soft])  # every other position keeps its token embedding
    # The placeholder ids under the soft slots do not matter at all.
    changed = dict(batch)
    changed["input_ids"] = batch["input_ids"].masked_fill(soft, 2000)
    assert torch.allclose(model(**changed).start_logits, output.start_logits)


def test_soft_prompt_is_initialised_from_template_token_embeddings(setup, documents, tokenizer):
    model, builder = setup("hybrid")
    table = model.input_embeddings().weight
    for type_index, entity_type in enumerate(model.config.entity_types):
        init_ids = builder.soft_init_ids(entity_type)
        hard_ids = tokenizer(TEMPLATES[entity_type].hard_text(), add_special_tokens=False)["input_ids"]
        assert init_ids == hard_ids[:4]
        assert torch.equal(model.soft_prompt.vectors[type_index], table[init_ids])


def test_plain_and_hard_modes_leave_embeddings_untouched(setup, documents, tokenizer):
    model, builder = setup("hard")
    captured = capture_encoder_inputs(model)
    _, batch = batch_for(model, builder, documents[:2])
    assert not batch["soft_mask"].any()
    model(**batch)
    assert torch.equal(captured["inputs_embeds"], model.input_embeddings()(batch["input_ids"]))


def test_lora_freezes_the_encoder(setup, documents, tokenizer):
    model, builder = setup("hybrid", lora_rank=4, lora_alpha=8)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and any("lora_" in name for name in trainable)
    for name in trainable:
        assert "lora_" in name or name.startswith(("soft_prompt.", "head.")), name
    assert any(name.startswith("head.") for name in trainable)
    assert "soft_prompt.vectors" in trainable
    frozen_before = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    assert any("word_embeddings" in name for name in frozen_before)
    assert set(trainable_state_dict(model)) == set(trainable)
    total = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) < total / 5

    _, batch = batch_for(model, builder, documents, with_labels=True)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    for _ in range(2):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            assert torch.equal(parameter, frozen_before[name]), name
    assert any(not torch.equal(p, lora_before[n]) for n, p in model.named_parameters() if n in lora_before)


def test_full_fine_tuning_trains_everything(bert_config, tiny):
    model = model_build(tiny.model_config(), encoder_config=bert_config)
    assert all(p.requires_grad for p in model.parameters())
    assert set(trainable_state_dict(model)) == {name for name, _ in model.named_parameters()}
    assert getattr(model.encoder, "pooler", None) is None  # span heads do not need BERT's pooler


def test_freezing_keeps_embeddings_and_bottom_layers_pretrained(bert_config, tiny):
    model = model_build(tiny.model_config(freeze_embeddings=True, frozen_layers=1), encoder_config=bert_config)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(name.startswith(("encoder.embeddings.", "encoder.encoder.layer.0.")) for name in frozen)
    assert any(name.startswith("encoder.encoder.layer.0.") for name in frozen)
    assert "encoder.embeddings.word_embeddings.weight" in frozen
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith(("encoder.encoder.layer.1.",
                                                                                     "head.", "soft_prompt.")))
    assert set(trainable_state_dict(model)).isdisjoint(frozen)
    with pytest.raises(ValueError, match="frozen_layers=3 but the encoder has 2 layers"):
        model_build(tiny.model_config(frozen_layers=3), encoder_config=bert_config)


def test_loss_decreases_over_a_few_steps(setup, documents, tokenizer):
    model, builder = setup("hybrid")
    model.train()
    triplets = documents_to_triplets(builder, documents)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        total = 0.0
        for indices in length_batches(triplets, 6):
            batch = triplets_collate([triplets[i] for i in indices], pad_id=0, max_span_width=4, with_labels=True)
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total += loss.item()
        losses.append(total)
    assert losses[-1] < 0.5 * losses[0]


def test_config_round_trip_ignores_unknown_keys():
    config = PromptBioMRCConfig(entity_types=["DRUG"], prompt_mode="soft", lora_rank=8)
    data = config.to_dict() | {"from_a_future_version": 1}
    assert PromptBioMRCConfig.from_dict(data) == config


def test_soft_prompt_with_no_soft_slots(setup, documents, tokenizer):
    model, builder = setup("plain")
    assert isinstance(model, PromptBioMRC)
    _, batch = batch_for(model, builder, documents[:1])
    embeddings = model.input_embeddings()(batch["input_ids"])
    assert torch.equal(model.soft_prompt(embeddings, batch["soft_mask"].bool(), batch["type_ids"]), embeddings)
