"""One-pass Prompt-bioMRC: every type's prompt and the text in one encoder input (tiny random BERT encoders).

Covers the input layout, the prompt cache (prompts attend only to prompts, so their states are computed once),
partial-label masking, the BIO auxiliary head, decoding edge cases across types and windows, and training."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ner_engine.batching import TripletLogits, windows_collate, windows_decode, windows_forward
from ner_engine.artifacts import model_build
from ner_engine.triplets import OnePassBuilder, QueryTemplate, TemplateError, documents_to_windows
from ner_engine.types import Document, Span

TEMPLATES = {
    "SYMPTOM": QueryTemplate("SYMPTOM", "symptom", "find every {anchor} such as pain", soft_prompt_length=4),
    "DRUG": QueryTemplate("DRUG", "drug", "find every {anchor} or medicine", soft_prompt_length=4),
}


@pytest.fixture
def setup(tokenizer, bert_config, tiny):
    """setup(mode, **config overrides) -> (tiny one-pass model, its OnePassBuilder)."""
    def build(mode="hybrid", **overrides):
        torch.manual_seed(0)
        values = dict(query_mode="one_pass", prompt_mode=mode, max_length=96)
        values.update(overrides)
        config = tiny.model_config(**values)
        model = model_build(config, encoder_config=bert_config)
        builder = OnePassBuilder(tokenizer, TEMPLATES, config.entity_types, prompt_mode=mode,
                                 max_length=config.max_length, window_overlap=config.window_overlap)
        model.soft_prompt_init([builder.soft_init_ids(t) for t in config.entity_types],
                               [builder.marker_init_ids(t) for t in config.entity_types])
        with torch.no_grad():  # FiLM starts at zero (type-agnostic); give the types distinct conditioning
            model.film.weight.normal_(std=0.2)
        return model, builder

    return build


def test_prompt_layout_per_mode(setup, tokenizer):
    for mode, soft in (("plain", 0), ("hard", 0), ("soft", 4), ("hybrid", 4)):
        _, builder = setup(mode)
        ids, slots, markers = builder.prompt_ids, builder.prompt_slots, builder.marker_positions
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id and len(ids) == len(slots)
        assert len(markers) == 2
        for type_index, entity_type in enumerate(("SYMPTOM", "DRUG")):
            position = markers[type_index]
            assert slots[position] == type_index * 5  # the marker: slot 0 of the type's K+1 learned vectors
            assert slots[position + 1 : position + 1 + soft] == [type_index * 5 + 1 + k for k in range(soft)]
            template = TEMPLATES[entity_type]
            words = {"plain": template.anchor, "hard": template.hard_text(), "soft": None,
                     "hybrid": template.hard_text()}[mode]
            hard = tokenizer(words, add_special_tokens=False)["input_ids"] if words else []
            start = position + 1 + soft
            assert ids[start : start + len(hard)] == hard and all(s == -1 for s in slots[start : start + len(hard)])


def test_windows_carry_gold_per_type_and_annotated_types(setup, tokenizer):
    _, builder = setup()
    document = Document("d", "Severe back pain and ibuprofen", [Span(7, 16, "SYMPTOM"), Span(21, 30, "DRUG")],
                        ("SYMPTOM", "DRUG"))
    [window] = documents_to_windows(builder, [document])
    assert window.types == (0, 1) and window.input_ids[-1] == tokenizer.sep_token_id
    for type_index, (start, end) in ((0, (7, 16)), (1, (21, 30))):
        [(first, last)] = window.gold[type_index]
        assert (window.offsets[first][0], window.offsets[last][1]) == (start, end)
    # A corpus that annotates only DRUG: SYMPTOM gold is dropped and SYMPTOM is not among the window's types.
    drug_only = Document("d", document.text, document.spans, ("DRUG",))
    [window] = documents_to_windows(builder, [drug_only])
    assert window.types == (1,) and set(window.gold) == {1}


def test_forward_shapes_loss_and_bio_labels(setup):
    model, builder = setup(bio_loss_weight=0.5)
    document = Document("d", "Severe back pain and ibuprofen", [Span(7, 16, "SYMPTOM"), Span(21, 30, "DRUG")],
                        ("SYMPTOM", "DRUG"))
    windows = documents_to_windows(builder, [document] * 3)
    batch = windows_collate(builder, windows, pad_id=0, max_span_width=4, with_labels=True)
    size, length = batch["input_ids"].shape
    output = model.forward_one_pass(**batch)
    assert output.start_logits.shape == (size, 2, length) == output.end_logits.shape
    assert output.match_logits.shape == (size, 2, length, 4)
    assert output.bio_logits.shape == (size, 2, length, 3)
    assert torch.isfinite(output.loss) and output.loss > 0
    [(first, last)] = windows[0].gold[0]
    assert batch["bio_labels"][0, 0, first] == 1 and (batch["bio_labels"][0, 0, first + 1 : last + 1] == 2).all()
    assert batch["bio_labels"][0, 0].count_nonzero() == last - first + 1
    # The auxiliary head adds to the loss only when its weight is positive.
    model.config.bio_loss_weight = 0.0
    without = model.forward_one_pass(**batch).loss
    assert without < output.loss


def test_partial_labels_mask_unannotated_types(setup):
    """A document trains only the types its corpus annotates: labels of a masked type change nothing, and its
    outputs receive no gradient."""
    model, builder = setup(bio_loss_weight=0.5)
    model.eval()  # no dropout: the two losses below must be comparable
    document = Document("d", "Severe back pain and ibuprofen", [Span(21, 30, "DRUG")], ("DRUG",))
    windows = documents_to_windows(builder, [document])
    batch = windows_collate(builder, windows, pad_id=0, max_span_width=4, with_labels=True)
    assert batch["type_mask"].tolist() == [[False, True]]
    loss = model.forward_one_pass(**batch).loss
    changed = dict(batch)
    for key in ("start_labels", "end_labels", "bio_labels"):
        changed[key] = batch[key].clone()
        changed[key][:, 0] = 1  # "every token is a SYMPTOM", for a corpus that does not annotate SYMPTOM
    changed["match_labels"] = batch["match_labels"].clone()
    changed["match_labels"][:, 0] = 1
    assert torch.allclose(model.forward_one_pass(**changed).loss, loss)
    # Gradient check on the outputs themselves.
    output = model.forward_one_pass(**{k: v for k, v in batch.items() if not k.endswith("labels") and k != "type_mask"})
    for tensor in (output.start_logits, output.end_logits, output.match_logits, output.bio_logits):
        tensor.retain_grad()
    model.loss_one_pass(output, batch["attention_mask"].bool(), batch["type_mask"], batch["start_labels"],
                        batch["end_labels"], batch["match_labels"], batch["bio_labels"]).backward()
    for tensor in (output.start_logits, output.end_logits, output.match_logits, output.bio_logits):
        assert tensor.grad[:, 0].abs().sum() == 0      # SYMPTOM: masked
        assert tensor.grad[:, 1].abs().sum() > 0       # DRUG: trained
    # Padding positions are masked too.
    assert output.start_logits.grad[:, 1][~batch["attention_mask"].bool()].abs().sum() == 0


def test_prompt_cache_matches_an_encoder_whose_prompts_cannot_see_the_text(setup):
    """The cached path (prompt block encoded once, text attends to it) computes what the whole encoder
    computes on [CLS] prompts [SEP] text [SEP] with prompt rows barred from the text."""
    model, builder = setup()
    model.eval()
    texts = ["Severe back pain and ibuprofen", "No dizziness today.", "He takes insulin every morning and aspirin"]
    windows = builder.build(texts)
    batch = windows_collate(builder, windows, pad_id=0, max_span_width=4)
    with torch.no_grad():
        prompt_state, text_hidden = model._encode_cached(batch["prompt_ids"], batch["prompt_slots"],
                                                         batch["input_ids"], batch["attention_mask"])
        size, length = batch["input_ids"].shape
        prompt_length = len(builder.prompt_ids)
        embeddings = torch.cat([model.prompt_embeddings(batch["prompt_ids"], batch["prompt_slots"]).expand(size, -1, -1),
                                model.input_embeddings()(batch["input_ids"])], 1)             # [B, P+N, H]
        keys = torch.cat([torch.ones(size, prompt_length, dtype=torch.long), batch["attention_mask"]], 1)  # [B, P+N]
        mask = keys[:, None, :].expand(-1, prompt_length + length, -1).clone()                 # [B, P+N, P+N]
        mask[:, :prompt_length, prompt_length:] = 0                                            # prompts: not the text
        token_types = torch.cat([torch.zeros(size, prompt_length, dtype=torch.long), torch.ones_like(batch["input_ids"])], 1)
        reference = model.encoder(inputs_embeds=embeddings, attention_mask=mask,
                                  token_type_ids=token_types).last_hidden_state
    valid = batch["attention_mask"].bool()
    assert torch.allclose(prompt_state[0], reference[0, :prompt_length], atol=1e-5)
    assert torch.allclose(text_hidden[valid], reference[:, prompt_length:][valid], atol=1e-5)
    # With full attention (prompt_cache off) the prompt states do depend on the text.
    model.config.prompt_cache = False
    with torch.no_grad():
        joint_prompts, _ = model._encode_joint(batch["prompt_ids"], batch["prompt_slots"], batch["input_ids"],
                                               batch["attention_mask"])
    assert not torch.allclose(joint_prompts[0], joint_prompts[1], atol=1e-4)


def test_prompt_cache_is_reused_in_eval_and_dropped_by_training_or_new_templates(setup):
    model, builder = setup()
    model.eval()
    batch = windows_collate(builder, builder.build(["Severe back pain and ibuprofen"]), pad_id=0, max_span_width=4)
    with torch.no_grad():
        first = model.forward_one_pass(**batch).start_logits
    cached = model._prompt_cache
    assert cached is not None
    with torch.no_grad():
        second = model.forward_one_pass(**batch).start_logits
    assert model._prompt_cache is cached and torch.equal(first, second)
    # New template wording -> new prompt ids -> new states.
    builder.templates_set({"DRUG": replace(TEMPLATES["DRUG"], template="list each {anchor} taken")})
    new_batch = windows_collate(builder, builder.build(["Severe back pain and ibuprofen"]), pad_id=0, max_span_width=4)
    with torch.no_grad():
        third = model.forward_one_pass(**new_batch).start_logits
    assert model._prompt_cache is not cached and not torch.allclose(third, first)
    model.train()
    assert model._prompt_cache is None


def test_one_pass_prompts_must_fit_and_share_a_soft_length(tokenizer):
    with pytest.raises(TemplateError, match="max_length"):
        OnePassBuilder(tokenizer, TEMPLATES, ["SYMPTOM", "DRUG"], max_length=20)
    uneven = dict(TEMPLATES, DRUG=replace(TEMPLATES["DRUG"], soft_prompt_length=2))
    with pytest.raises(TemplateError, match="one soft-prompt length"):
        OnePassBuilder(tokenizer, uneven, ["SYMPTOM", "DRUG"])


# --- decoding edge cases ------------------------------------------------------------------------------------

def forced_logits(window, spans_per_type: dict[int, list[tuple[int, int, float]]], types: int = 2,
                  width: int = 4) -> list[TripletLogits]:
    """Logits that make exactly the given (start, end, logit) token spans pass, per type."""
    n = len(window.input_ids)
    out = []
    for type_index in range(types):
        start, end, match = np.full(n, -9.0), np.full(n, -9.0), np.full((n, width), -9.0)
        for first, last, logit in spans_per_type.get(type_index, []):
            start[first], end[last], match[first, last - first] = logit, logit, logit
        out.append(TripletLogits(start, end, match))
    return out


def test_decode_entities_at_the_first_and_last_token(setup):
    _, builder = setup()
    text = "Headache and aspirin"
    [window] = builder.build([text])
    last = len(window.input_ids) - 2  # the closing [SEP] is last
    first = next(i for i, (s, _) in enumerate(window.offsets) if s == text.index("aspirin"))  # several word pieces
    logits = [forced_logits(window, {0: [(0, 0, 3.0)], 1: [(first, last, 3.0)]})]
    [found] = windows_decode(builder, [window], logits, 1)
    assert [(text[c.start:c.end], c.type) for c in found] == [("Headache", "SYMPTOM"), ("aspirin", "DRUG")]
    # Nothing is ever decoded on the closing [SEP].
    sep = len(window.input_ids) - 1
    [found] = windows_decode(builder, [window], [forced_logits(window, {1: [(sep, sep, 5.0)]})], 1)
    assert found == []


def test_decode_overlaps_across_types_keep_the_best_score(setup):
    _, builder = setup()
    text = "Severe back pain and ibuprofen"
    [window] = builder.build([text])
    words = {text[s:e]: i for i, (s, e) in enumerate(window.offsets) if s >= 0}
    back, pain = words["back"], words["pain"]
    # SYMPTOM "back pain" (score ~0.95) vs DRUG "pain" (~0.73): the weaker cross-type overlap goes.
    logits = [forced_logits(window, {0: [(back, pain, 3.0)], 1: [(pain, pain, 1.0)]})]
    [found] = windows_decode(builder, [window], logits, 1)
    assert [(text[c.start:c.end], c.type) for c in found] == [("back pain", "SYMPTOM")]
    # Types that were not asked for are not decoded, so they cannot suppress an overlapping asked-for type.
    logits = [forced_logits(window, {0: [(back, pain, 1.0)], 1: [(pain, pain, 3.0)]})]
    [found] = windows_decode(builder, [window], logits, 1, types_per_text=[["SYMPTOM"]])
    assert [(text[c.start:c.end], c.type) for c in found] == [("back pain", "SYMPTOM")]


def test_decode_long_text_windows_collapse_duplicates_and_keep_offsets(setup, tokenizer):
    """A mention inside the overlap of two windows is found by both and reported once, at its offsets."""
    _, builder = setup(max_length=80, window_overlap=8)
    for count in range(20, 80):  # the first layout that puts "ibuprofen" whole in two windows
        text = " ".join(["word"] * count) + " ibuprofen " + " ".join(["word"] * 60)
        start = text.index("ibuprofen")
        windows = builder.build([text])
        holding = [w for w in windows if any(s == start for s, _ in w.offsets)
                   and any(e == start + len("ibuprofen") for _, e in w.offsets)]
        if len(holding) == 2:
            break
    assert len(windows) >= 3 and len(holding) == 2
    logits = []
    for window in windows:
        spans = {}
        if window in holding:
            first = next(i for i, (s, _) in enumerate(window.offsets) if s == start)
            last = next(i for i, (_, e) in enumerate(window.offsets) if e == start + len("ibuprofen"))
            spans = {1: [(first, last, 2.0 + 0.5 * len(logits))]}
        logits.append(forced_logits(window, spans))
    [found] = windows_decode(builder, windows, logits, 1)
    assert [(text[c.start:c.end], c.type) for c in found] == [("ibuprofen", "DRUG")]
    best = max(1 / (1 + np.exp(-(2.0 + 0.5 * windows.index(w)))) for w in holding)
    assert found[0].score == pytest.approx(best)


def test_forward_keeps_input_order_and_lengths(setup):
    model, builder = setup()
    model.eval()
    texts = ["a much longer sentence about back pain and several other things", "pain", "aspirin twice"]
    windows = builder.build(texts)
    logits = windows_forward(model, builder, windows, batch_size=2)
    for window, per_type in zip(windows, logits):
        assert len(per_type) == 2 and all(len(t.start) == len(window.input_ids) for t in per_type)
    alone = windows_forward(model, builder, windows[1:2])
    assert np.allclose(alone[0][0].start, logits[1][0].start, atol=1e-5)


# --- training and the extractor -------------------------------------------------------------------------------

def test_one_pass_model_learns_the_training_sentences(trained_one_pass, one_pass_extractor, tiny):
    assert trained_one_pass["card"]["dev"][f"jsonl:{trained_one_pass['jsonl']}"]["strict"]["micro"]["f1"] == 1.0
    texts = [text for text, _ in tiny.sentences]
    for (text, mentions), found in zip(tiny.sentences, one_pass_extractor.extract(texts)):
        assert sorted((e.text, e.type) for e in found) == sorted(mentions)


def test_one_pass_types_filter(one_pass_extractor):
    [found] = one_pass_extractor.extract(["I have a bad headache since taking ibuprofen."], types=["DRUG"])
    assert [(e.text, e.type) for e in found] == [("ibuprofen", "DRUG")]
    assert one_pass_extractor.extract(["headache"], types=[]) == [[]]


def test_one_pass_artifact_round_trip(trained_one_pass, one_pass_extractor, tiny, tmp_path):
    from ner_engine.artifacts import artifact_load, artifact_save
    from ner_engine.extractor import Extractor

    model, templates = artifact_load(trained_one_pass["best"])
    assert model.config.query_mode == "one_pass" and hasattr(model, "markers")
    artifact_save(tmp_path / "copy", model, templates)
    copy = Extractor.load(tmp_path / "copy", device="cpu", context=False)
    texts = [text for text, _ in tiny.sentences]
    assert copy.extract(texts) == one_pass_extractor.extract(texts)
