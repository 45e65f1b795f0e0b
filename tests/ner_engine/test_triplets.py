"""(PROMPT, ANCHOR, CONTEXT) triplets: queries in the four prompt modes, template checks, windowing, gold labels,
and the character-offset alignment that every predicted span relies on."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ner_engine.triplets import (MAX_TEMPLATE_TOKENS, PROMPT_MODES, QueryTemplate, TemplateError, TripletBuilder,
                                 _windows, documents_to_triplets, template_validate, templates_from_dict,
                                 templates_load, templates_to_dict)
from ner_engine.types import Document, Span

TYPES = ("SYMPTOM", "DRUG")
TEMPLATES = {
    "SYMPTOM": QueryTemplate("SYMPTOM", "symptom", "find every {anchor} such as pain", soft_prompt_length=3),
    "DRUG": QueryTemplate("DRUG", "drug", "find every {anchor} or medicine", soft_prompt_length=3),
}
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def builder_for(tokenizer, mode="hybrid", **kwargs):
    return TripletBuilder(tokenizer, TEMPLATES, TYPES, prompt_mode=mode, **kwargs)


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def context_tokens(triplet):
    """(position, (start, end)) of every context position of a triplet."""
    return [(i, o) for i, o in enumerate(triplet.offsets) if o[0] >= 0]


# --- queries ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", PROMPT_MODES)
def test_query_construction(tokenizer, mode):
    text = "Severe headache after ibuprofen"
    [symptom, drug] = builder_for(tokenizer, mode).build([text], [list(TYPES)])
    template = TEMPLATES["SYMPTOM"]
    hard = ids(tokenizer, template.hard_text())
    soft = [tokenizer.mask_token_id] * 3
    expected_query = {"plain": ids(tokenizer, "symptom"), "hard": hard, "soft": soft, "hybrid": soft + hard}[mode]
    context = ids(tokenizer, text)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert symptom.input_ids == [cls, *expected_query, sep, *context, sep]
    assert (symptom.type, symptom.type_index, drug.type, drug.type_index) == ("SYMPTOM", 0, "DRUG", 1)
    prefix = len(expected_query) + 2
    assert symptom.token_type_ids == [0] * prefix + [1] * (len(context) + 1)
    n_soft = 3 if mode in ("soft", "hybrid") else 0
    assert symptom.soft_mask == [0] + [1] * n_soft + [0] * (len(symptom.input_ids) - 1 - n_soft)
    assert symptom.offsets[:prefix] == [(-1, -1)] * prefix and symptom.offsets[-1] == (-1, -1)
    pieces = [text[s:e].lower() for _, (s, e) in context_tokens(symptom)]
    assert pieces == [token.removeprefix("##") for token in tokenizer.tokenize(text)]
    assert "".join(pieces) == "severeheadacheafteribuprofen"
    assert len(symptom.input_ids) == len(symptom.offsets) == len(symptom.word_start) == len(symptom.word_end)
    if mode == "soft":
        assert drug.input_ids == symptom.input_ids  # the types differ only in their soft vectors (type_index)
    else:
        assert drug.input_ids != symptom.input_ids  # each type asks its own question


def test_soft_init_ids_cycle_the_hard_template(tokenizer):
    builder = builder_for(tokenizer)
    hard = ids(tokenizer, TEMPLATES["DRUG"].hard_text())
    assert builder.soft_init_ids("DRUG") == hard[:3]
    long = QueryTemplate("DRUG", "drug", "{anchor}", soft_prompt_length=5)
    builder = TripletBuilder(tokenizer, {"SYMPTOM": TEMPLATES["SYMPTOM"], "DRUG": long}, TYPES)
    [drug_id] = ids(tokenizer, "drug")
    assert builder.soft_init_ids("DRUG") == [drug_id] * 5


def test_builder_rejects_unknown_mode_and_missing_templates(tokenizer):
    with pytest.raises(ValueError, match="prompt_mode"):
        builder_for(tokenizer, "fancy")
    with pytest.raises(TemplateError, match="no template for entity type"):
        TripletBuilder(tokenizer, {"SYMPTOM": TEMPLATES["SYMPTOM"]}, TYPES)


def test_templates_set_keeps_soft_lengths_and_rebuilds_queries(tokenizer):
    builder = builder_for(tokenizer, "hard")
    builder.templates_set({"DRUG": QueryTemplate("DRUG", "drug", "which {anchor} was taken", soft_prompt_length=9)})
    assert builder.templates["DRUG"].soft_prompt_length == 3
    assert builder.templates["SYMPTOM"] == TEMPLATES["SYMPTOM"]
    [drug] = builder.build(["aspirin"], [["DRUG"]])
    assert drug.input_ids[1:-1 - len(ids(tokenizer, "aspirin")) - 1] == ids(tokenizer, "which drug was taken")


def test_shipped_templates_are_valid(tokenizer):
    templates = templates_load()
    assert {"SYMPTOM", "DISEASE", "DRUG"} <= set(templates)
    for template in templates.values():
        template_validate(template, tokenizer=tokenizer)
        assert "{anchor}" in template.template
    assert templates_from_dict(templates_to_dict(templates)) == templates


# --- template validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("anchor, text, message", [
    ("symptom", "", "template text is empty"),
    ("symptom", "   ", "template text is empty"),
    ("", "find every {anchor}", "anchor words are empty"),
    ("symptom", "find every {foo}", r"unknown placeholder\(s\) \{foo\}"),
    ("symptom", "find {anchor} in {0}", r"unknown placeholder\(s\) \{0\}"),
    ("symptom", "find every {anchor", "malformed template"),
    ("symptom", "find every anchor}", "malformed template"),
    ("symptom", "find every {anchor!x}", "malformed placeholder"),
    ("symptom", "find every {anchor:d}", "malformed placeholder"),
])
def test_template_validation_errors(tokenizer, anchor, text, message):
    template = QueryTemplate("SYMPTOM", anchor, text)
    with pytest.raises(TemplateError, match=message):
        template_validate(template)
    with pytest.raises(TemplateError, match=message):
        template_validate(template, tokenizer=tokenizer)


def test_template_too_long(tokenizer):
    # "pain" and "fever" are one token each; 8 soft slots leave 56 tokens for the hard template.
    too_long = QueryTemplate("SYMPTOM", "pain", "{anchor} " + " ".join(["fever"] * 56), soft_prompt_length=8)
    template_validate(too_long)  # the length is only known with the tokenizer
    with pytest.raises(TemplateError, match="the template is 57 tokens; at most 56 leave room"):
        template_validate(too_long, tokenizer=tokenizer)
    fits = QueryTemplate("SYMPTOM", "pain", "{anchor} " + " ".join(["fever"] * 55), soft_prompt_length=8)
    template_validate(fits, tokenizer=tokenizer)
    assert MAX_TEMPLATE_TOKENS == 64
    with pytest.raises(TemplateError, match="soft prompt length"):
        template_validate(QueryTemplate("SYMPTOM", "symptom", "{anchor}", soft_prompt_length=33))


def test_literal_braces_are_allowed(tokenizer):
    template = QueryTemplate("SYMPTOM", "symptom", "find every {anchor} {{like this}}")
    template_validate(template, tokenizer=tokenizer)
    assert template.hard_text() == "find every symptom {like this}"


def test_prompt_leaving_no_room_for_text(tokenizer):
    builder = builder_for(tokenizer, "hybrid", max_length=10)
    with pytest.raises(TemplateError, match="no room for the text"):
        builder.build(["fever"], [["SYMPTOM"]])


# --- windows ----------------------------------------------------------------------------------------------

LONG_WORDS = ["pneumonoultramicroscopicsilicovolcanoconiosis", "hydrochlorothiazide", "acetaminophen", "tachycardia",
              "pain", "x", "fever,", "(tachycardia)", "naïve", "post-operative", "don't"]


def long_text(n_words=90):
    return " ".join(LONG_WORDS[(i * 7) % len(LONG_WORDS)] for i in range(n_words))


def test_windows_of_a_long_text_overlap_and_never_split_a_word(tokenizer):
    text = long_text()
    builder = builder_for(tokenizer, "plain", max_length=32, window_overlap=8)
    triplets = builder.build([text], [["SYMPTOM"]])
    full = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    full = [tuple(o) for o in full]
    assert len(triplets) > 5
    budget = 32 - len(ids(tokenizer, "symptom")) - 3
    windows = []
    for triplet in triplets:
        assert len(triplet.input_ids) <= 32
        offsets = [o for _, o in context_tokens(triplet)]
        assert 0 < len(offsets) <= budget
        lo = full.index(offsets[0])
        assert full[lo:lo + len(offsets)] == offsets  # a contiguous run of the text's tokens
        windows.append((lo, lo + len(offsets)))
        first_char, last_char = offsets[0][0], offsets[-1][1]
        # No word is cut: the window starts and ends on an alphanumeric-run boundary.
        assert first_char == 0 or not (text[first_char - 1].isalnum() and text[first_char].isalnum())
        assert last_char == len(text) or not (text[last_char - 1].isalnum() and text[last_char].isalnum())
    assert windows[0][0] == 0 and windows[-1][1] == len(full)
    for (lo, hi), (next_lo, next_hi) in zip(windows, windows[1:]):
        assert lo < next_lo < hi < next_hi  # consecutive windows overlap and move forward
        assert hi - next_lo <= 8


def test_windows_terminate_on_a_word_longer_than_the_budget():
    # Only the first token starts a word: the window must still advance (and here has to cut the word).
    starts = [True] + [False] * 49
    windows = _windows(50, 12, 4, starts)
    assert windows[0][0] == 0 and windows[-1][1] == 50
    assert all(hi - lo <= 12 for lo, hi in windows)
    assert all(b[0] > a[0] for a, b in zip(windows, windows[1:]))
    assert _windows(5, 12, 4, [True] * 5) == [(0, 5)]
    assert _windows(0, 12, 4, []) == [(0, 0)]


# --- gold labels ------------------------------------------------------------------------------------------

def test_gold_spans_become_token_labels(tokenizer):
    text = "Severe back pain, then ibuprofenol tablets."
    document = Document("d", text, [Span(7, 16, "SYMPTOM"), Span(23, 34, "DRUG")], TYPES)
    builder = builder_for(tokenizer, "hard")
    symptom, drug = documents_to_triplets(builder, [document])
    [(start, end)] = symptom.gold_spans
    assert text[symptom.offsets[start][0]:symptom.offsets[end][1]] == "back pain"
    [(start, end)] = drug.gold_spans
    assert text[drug.offsets[start][0]:drug.offsets[end][1]] == "ibuprofenol"
    assert drug.offsets[start][0] >= 0 and start <= end


def test_only_annotated_types_are_queried(tokenizer):
    documents = [Document("a", "fever", [Span(0, 5, "SYMPTOM")], ("SYMPTOM",)),
                 Document("b", "aspirin", [], ("DRUG", "DISEASE")),
                 Document("c", "nothing", [], ())]
    triplets = documents_to_triplets(builder_for(tokenizer, "plain"), documents)
    assert [(t.text_index, t.type) for t in triplets] == [(0, "SYMPTOM"), (1, "DRUG")]


def test_gold_span_cut_by_a_window_edge_is_kept_whole_elsewhere(tokenizer):
    text = long_text(60)
    builder = builder_for(tokenizer, "plain", max_length=24, window_overlap=10)
    spans = [(m.start(), m.end(), "SYMPTOM") for m in re.finditer(r"tachycardia|acetaminophen", text)]
    triplets = builder.build([text], [["SYMPTOM"]], [spans])
    found = set()
    for triplet in triplets:
        window_start = context_tokens(triplet)[0][1][0]
        window_end = context_tokens(triplet)[-1][1][1]
        for start, end in triplet.gold_spans:
            char_span = (triplet.offsets[start][0], triplet.offsets[end][1])
            assert window_start <= char_span[0] < char_span[1] <= window_end
            found.add(char_span)
    assert found == {(s, e) for s, e, _ in spans}


# --- offset alignment (property-based) --------------------------------------------------------------------

ALPHABET = st.sampled_from(list("abcxyzABC019éèüñçøßİıﬁ½²中文日本ﺍ") + ["\u0301", "\u200b", "\u00ad", "\ufffd", "🙂"])
SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", "\n\n", " - ", ", ", ". ", "'", "(", ")", "/", "\u00a0", "\u3000",
                              "—", "…", "¿", "\r\n", "\x00", "\x1f"])
WORD_CHARS = st.sampled_from(list("abcdefghxyzABCXYZ0129éèüñçøßÅ中文½²"))
# Characters BERT's normaliser deletes ("\x00", "\x1f", soft hyphen, zero-width space) glue their neighbours
# into one token, so they do not separate words for the tokenizer; the gold-span property leaves them out.
WORD_SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", "\n\n", " - ", ", ", ". ", "(", ")", "/", "\u00a0",
                                   "\u3000", "—", "…", "¿", "\r\n", "\u200b "])


@st.composite
def arbitrary_texts(draw):
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.text(max_size=120))  # any unicode at all
    pieces = draw(st.lists(st.tuples(st.text(ALPHABET, min_size=1, max_size=14), SEPARATORS), max_size=30))
    return "".join(word + separator for word, separator in pieces)


@PROPERTY_SETTINGS
@given(text=arbitrary_texts())
def test_property_context_offsets_lie_in_the_text_and_map_back(tokenizer, text):
    builder = builder_for(tokenizer, "plain", max_length=20, window_overlap=5)
    normalize = tokenizer.backend_tokenizer.normalizer.normalize_str
    full = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    full_offsets = [tuple(o) for o in full["offset_mapping"]]
    seen = set()
    for triplet in builder.build([text], [["SYMPTOM"]]):
        previous_end = 0
        for position, (start, end) in context_tokens(triplet):
            assert 0 <= start < end <= len(text)
            assert start >= previous_end  # tokens in text order, never overlapping
            previous_end = end
            piece = text[start:end]
            assert piece.strip() == piece and piece
            token = tokenizer.convert_ids_to_tokens(triplet.input_ids[position])
            if token != tokenizer.unk_token:
                assert normalize(piece).strip() == token.removeprefix("##")  # the offsets give back the token's text
            seen.add((start, end))
    assert seen == set(full_offsets)  # the windows together cover every token of the text


@st.composite
def texts_with_words(draw):
    words = draw(st.lists(st.text(WORD_CHARS, min_size=1, max_size=12), min_size=1, max_size=25))
    separators = draw(st.lists(WORD_SEPARATORS, min_size=len(words), max_size=len(words)))
    return "".join(w + s for w, s in zip(words, separators))


@PROPERTY_SETTINGS
@given(text=texts_with_words(), data=st.data())
def test_property_gold_word_spans_round_trip_through_tokens(tokenizer, text, data):
    words = [(m.start(), m.end()) for m in re.finditer(r"[^\W_]+", text)]
    chosen = data.draw(st.lists(st.sampled_from(words), unique=True, max_size=6)) if words else []
    spans = [(s, e, "DRUG") for s, e in chosen]
    builder = builder_for(tokenizer, "plain", max_length=24, window_overlap=8)
    recovered = set()
    for triplet in builder.build([text], [["DRUG"]], [spans]):
        for start, end in triplet.gold_spans:
            assert triplet.word_start[start] and triplet.word_end[end]  # decodable: starts and ends a word
            recovered.add((triplet.offsets[start][0], triplet.offsets[end][1]))
    short = {(s, e) for s, e in chosen if len(tokenizer.tokenize(text[s:e])) <= 8}  # fits inside one overlap
    assert short <= recovered <= {(s, e) for s, e in chosen}


# --- with a model: every predicted entity maps back to its text --------------------------------------------

@st.composite
def texts_with_known_words(draw):
    known = ["headache", "ibuprofen", "Fever", "cough", "aspirin", "nausea", "metformin", "back pain", "insulin",
             "I have a bad", "since taking", "after the", "dose.", "No dizziness today."]
    pieces = draw(st.lists(st.one_of(st.sampled_from(known), st.text(ALPHABET, min_size=1, max_size=8)), max_size=40))
    separators = draw(st.lists(SEPARATORS, min_size=len(pieces), max_size=len(pieces)))
    return "".join(p + s for p, s in zip(pieces, separators))


@pytest.fixture(scope="session", params=["per_type", "one_pass"])
def any_extractor(request):
    """The tiny extractor in each query mode (the one-pass model is trained on first use)."""
    return request.getfixturevalue("tiny_extractor" if request.param == "per_type" else "one_pass_extractor")


@PROPERTY_SETTINGS
@given(texts=st.lists(st.one_of(texts_with_known_words(), st.text(max_size=60)), min_size=1, max_size=4))
def test_property_predicted_entities_map_back_to_the_text(any_extractor, texts):
    tiny_extractor = any_extractor
    results = tiny_extractor.extract(texts)
    assert len(results) == len(texts)
    for text, entities in zip(texts, results):
        previous_end = 0
        for entity in entities:
            assert 0 <= entity.start < entity.end <= len(text)
            assert text[entity.start:entity.end] == entity.text
            assert entity.text.strip() == entity.text
            # Scores are rounded to 4 places; every kept span passed the model's dev-tuned threshold.
            assert entity.type in ("SYMPTOM", "DRUG") and tiny_extractor.threshold - 1e-4 <= entity.score <= 1.0
            assert entity.start >= previous_end  # sorted, non-overlapping
            previous_end = entity.end
