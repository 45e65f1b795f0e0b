"""The Extractor on the tiny model trained once per session (conftest `trained`)."""
from __future__ import annotations

import threading

import pytest
import torch

from ner_engine.batching import triplets_collate
from ner_engine.decoding import overlaps_resolve, spans_decode
from ner_engine.extractor import Extractor
from ner_engine.triplets import QueryTemplate, TemplateError
from ner_engine.types import Entity


def as_tuples(results):
    return [[(e.start, e.end, e.type, e.text, e.score) for e in entities] for entities in results]


def test_extracts_the_training_mentions(tiny_extractor, tiny):
    texts = [text for text, _ in tiny.sentences]
    results = tiny_extractor.extract(texts)
    for (text, mentions), entities in zip(tiny.sentences, results):
        assert [(e.text, e.type) for e in entities] == sorted(mentions, key=lambda m: text.index(m[0]))
        for entity in entities:
            assert isinstance(entity, Entity) and text[entity.start:entity.end] == entity.text
            assert 0.5 <= entity.score <= 1.0
    assert tiny_extractor.model_version == "tiny-test-1"
    assert tiny_extractor.entity_types == ("SYMPTOM", "DRUG")


def test_types_filter(tiny_extractor, tiny):
    text = tiny.sentences[0][0]
    [drugs] = tiny_extractor.extract([text], types=["DRUG"])
    assert [(e.text, e.type) for e in drugs] == [("ibuprofen", "DRUG")]
    assert tiny_extractor.extract([text], types=["DISEASE"]) == [[]]  # a type the model was not trained for
    assert tiny_extractor.extract([text], types=[]) == [[]]  # no type asked, nothing found


def test_entity_to_dict(tiny_extractor):
    [[entity, *_]] = tiny_extractor.extract(["I have a bad headache since taking ibuprofen."])
    entity.attributes["negated"] = False
    assert entity.to_dict() == {"start": 13, "end": 21, "type": "SYMPTOM", "text": "headache", "score": entity.score,
                                "negated": False}


def test_int8_extractor_quantises_the_encoder_only(trained, tiny):
    quantised = Extractor.load(trained["best"], device="cpu", precision="int8", context=False)
    kinds = {type(module).__module__ for module in quantised.model.encoder.modules()}
    assert any("quantized" in kind for kind in kinds)
    assert isinstance(quantised.model.head.start, torch.nn.Linear)
    texts = [text for text, _ in tiny.sentences]
    for text, entities in zip(texts, quantised.extract(texts)):
        assert all(text[e.start : e.end] == e.text for e in entities)
    with pytest.raises(ValueError, match="precision must be one of fp32, int8"):
        Extractor.load(trained["best"], device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="int8 precision is for CPU"):
        Extractor.load(trained["best"], device="cuda", precision="int8")


def test_empty_and_blank_inputs(tiny_extractor):
    assert tiny_extractor.extract([]) == []
    assert tiny_extractor.extract([""]) == [[]]
    assert tiny_extractor.extract(["   \n\t  "]) == [[]]
    assert tiny_extractor.extract(["", "He takes insulin every morning.", " "])[0::2] == [[], []]
    with pytest.raises(TypeError, match="list of texts"):
        tiny_extractor.extract("He takes insulin every morning.")


def test_very_long_text_is_windowed(tiny_extractor):
    sentence = "He takes insulin every morning."
    text = " ".join([sentence] * 40)
    extractor = tiny_extractor
    assert len(extractor.tokenizer(text)["input_ids"]) > 3 * extractor.model.config.max_length
    triplets = extractor.builder.build([text], [list(extractor.entity_types)])
    assert len(triplets) > 10 and all(len(t.input_ids) <= extractor.model.config.max_length for t in triplets)
    [entities] = extractor.extract([text])
    assert entities
    for entity in entities:
        assert 0 <= entity.start < entity.end <= len(text) and text[entity.start:entity.end] == entity.text
    first_window_end = max(o[1] for o in triplets[0].offsets)
    assert entities[0].text == "insulin" and entities[0].start < first_window_end
    assert any(e.start >= first_window_end for e in entities)  # later windows contribute too
    # The same result, window by window: one unpadded forward pass per triplet, then overlap resolution.
    candidates = []
    with torch.inference_mode():
        for triplet in triplets:
            batch = triplets_collate([triplet], pad_id=0, max_span_width=extractor.model.config.max_span_width)
            output = extractor.model(**batch)
            candidates += spans_decode(output.start_logits[0].numpy(), output.end_logits[0].numpy(),
                                       output.match_logits[0].numpy(), triplet.offsets, triplet.word_start,
                                       triplet.word_end, triplet.type)
    expected = overlaps_resolve(candidates)
    assert [(e.start, e.end, e.type) for e in entities] == [(c.start, c.end, c.type) for c in expected]
    assert [e.score for e in entities] == pytest.approx([c.score for c in expected], abs=1e-3)


def test_set_templates_rejects_a_malformed_template_and_keeps_the_old_ones(tiny_extractor, tiny):
    extractor = tiny_extractor
    before_templates, before_version = extractor.templates, extractor.template_version
    texts = [text for text, _ in tiny.sentences]
    before = as_tuples(extractor.extract(texts))
    for bad in ("Find every {foo}.", "Find every {anchor", "", "Find {anchor!x}",
                "{anchor} " + " ".join(["fever"] * 80)):
        with pytest.raises(TemplateError):
            # One good and one bad entry: neither is applied.
            extractor.set_templates({"DRUG": "which {anchor} was taken?", "SYMPTOM": bad}, version="bad")
        assert extractor.templates == before_templates
        assert extractor.template_version == before_version
    assert as_tuples(extractor.extract(texts)) == before


def test_set_templates_applies_new_wording(trained, tiny):
    # A fresh extractor: the shared one keeps its templates.
    extractor = Extractor.load(trained["best"], device="cpu", context=False)
    old = extractor.templates
    text = tiny.sentences[0][0]
    old_ids = extractor.builder.build([text], [["DRUG"]])[0].input_ids
    extractor.set_templates({"DRUG": "which {anchor} did the patient take?",
                             "SYMPTOM": {"template": "what {anchor} is there?", "anchor": "complaint"},
                             "DISEASE": "ignored: the model has no DISEASE query"}, version="admin-2")
    assert extractor.template_version == "admin-2"
    templates = extractor.templates
    assert templates["DRUG"].hard_text() == "which drug did the patient take?"
    assert templates["SYMPTOM"].hard_text() == "what complaint is there?"
    assert templates["DRUG"].soft_prompt_length == old["DRUG"].soft_prompt_length
    assert "DISEASE" not in templates
    new_ids = extractor.builder.build([text], [["DRUG"]])[0].input_ids
    assert new_ids != old_ids
    extractor.set_templates({"DRUG": QueryTemplate("DRUG", "drug", old["DRUG"].template, 99)}, version="back")
    assert extractor.builder.build([text], [["DRUG"]])[0].input_ids == old_ids


def test_concurrent_extraction_matches_sequential(tiny_extractor, tiny):
    batches = [[text for text, _ in tiny.sentences[i:] + tiny.sentences[:i]] for i in range(6)]
    batches.append(["Fever, cough and nausea after aspirin and metformin. " * 6])
    expected = [as_tuples(tiny_extractor.extract(batch)) for batch in batches]
    results: dict[tuple[int, int], list] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def work(worker: int) -> None:
        try:
            start.wait()
            for round_ in range(3):
                index = (worker + round_) % len(batches)
                results[(worker, round_)] = (index, as_tuples(tiny_extractor.extract(batches[index])))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert len(results) == 18
    for index, found in results.values():
        assert found == expected[index]


def test_template_swaps_during_concurrent_extraction(trained, tiny):
    """Each call sees one set of templates, the old or the new, never a mix."""
    extractor = Extractor.load(trained["best"], device="cpu", context=False)
    texts = [text for text, _ in tiny.sentences] * 2
    original = {t: q.template for t, q in extractor.templates.items()}
    other = {"SYMPTOM": "what {anchor} does the patient report?", "DRUG": "what {anchor} was given?"}
    expected_original = as_tuples(extractor.extract(texts))
    extractor.set_templates(other, version="other")
    expected_other = as_tuples(extractor.extract(texts))
    assert expected_other != expected_original
    errors: list[BaseException] = []
    seen: list = []

    def extract() -> None:
        try:
            for _ in range(4):
                seen.append(as_tuples(extractor.extract(texts)))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    def swap() -> None:
        try:
            for i in range(8):
                extractor.set_templates(original if i % 2 == 0 else other, version=str(i))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=extract) for _ in range(3)] + [threading.Thread(target=swap)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(seen) == 12
    assert all(found in (expected_original, expected_other) for found in seen)
