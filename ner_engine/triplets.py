"""(PROMPT, ANCHOR, CONTEXT) triplets: one MRC query per (text window, entity type).

Encoder input for one triplet:  [CLS] <soft slots> PROMPT(anchor) [SEP] CONTEXT [SEP]
  - plain:  PROMPT is the anchor words alone ("disease")
  - hard:   PROMPT is the editable hard template with `{anchor}` filled in
  - soft:   only the learnable soft slots (their vectors start from the hard template's token embeddings)
  - hybrid: soft slots followed by the hard template
Texts longer than the budget are cut into overlapping windows; every context token keeps its character
offsets into the original text, so predictions map back to exact character spans.
"""
from __future__ import annotations

import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ner_engine.types import Document

PROMPT_MODES = ("plain", "hard", "soft", "hybrid")
DEFAULT_TEMPLATES_PATH = Path(__file__).with_name("templates.json")
MAX_TEMPLATE_TOKENS = 64


class TemplateError(ValueError):
    """A prompt template that cannot be used (empty, unknown placeholder, too long)."""


@dataclass(frozen=True)
class QueryTemplate:
    type: str
    anchor: str
    template: str
    soft_prompt_length: int = 8

    def hard_text(self) -> str:
        return self.template.format(anchor=self.anchor)


def template_validate(template: QueryTemplate, *, tokenizer=None) -> None:
    """Raise TemplateError unless the template is usable; the admin and the engine share this check."""
    if not template.anchor.strip():
        raise TemplateError(f"{template.type}: the anchor words are empty")
    if not template.template.strip():
        raise TemplateError(f"{template.type}: the template text is empty")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template.template) if name is not None]
    except ValueError as error:
        raise TemplateError(f"{template.type}: malformed template ({error}); write literal braces as {{{{ }}}}") from error
    unknown = sorted({name for name in fields if name != "anchor"})
    if unknown:
        raise TemplateError(f"{template.type}: unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
                            "only {anchor} is allowed")
    try:
        template.hard_text()  # a conversion or format spec, e.g. {anchor!x} or {anchor:d}, fails only here
    except (ValueError, TypeError) as error:
        raise TemplateError(f"{template.type}: malformed placeholder ({error}); write it as {{anchor}}") from error
    if not 0 <= template.soft_prompt_length <= 32:
        raise TemplateError(f"{template.type}: soft prompt length must be between 0 and 32")
    if tokenizer is not None:
        length = len(tokenizer(template.hard_text(), add_special_tokens=False)["input_ids"])
        if length + template.soft_prompt_length > MAX_TEMPLATE_TOKENS:
            raise TemplateError(f"{template.type}: the template is {length} tokens; at most "
                                f"{MAX_TEMPLATE_TOKENS - template.soft_prompt_length} leave room for the text")


def templates_load(path: str | Path | None = None) -> dict[str, QueryTemplate]:
    data = json.loads(Path(path or DEFAULT_TEMPLATES_PATH).read_text(encoding="utf-8"))
    return templates_from_dict(data)


def templates_from_dict(data: Mapping[str, Mapping]) -> dict[str, QueryTemplate]:
    templates = {}
    for entity_type, entry in data.items():
        template = QueryTemplate(type=entity_type, anchor=entry["anchor"], template=entry["template"],
                                 soft_prompt_length=int(entry.get("soft_prompt_length", 8)))
        template_validate(template)
        templates[entity_type] = template
    return templates


def templates_to_dict(templates: Mapping[str, QueryTemplate]) -> dict[str, dict]:
    return {t.type: {"anchor": t.anchor, "template": t.template, "soft_prompt_length": t.soft_prompt_length}
            for t in templates.values()}


@dataclass
class Triplet:
    """One encoder input. Lists are per position; context positions carry character offsets, others (-1, -1)."""

    text_index: int
    type: str
    type_index: int
    input_ids: list[int]
    token_type_ids: list[int]
    soft_mask: list[int]
    offsets: list[tuple[int, int]]
    word_start: list[int]
    word_end: list[int]
    gold_spans: list[tuple[int, int]] = field(default_factory=list)  # (start token, end token), inclusive


def _builder_arguments_check(templates: Mapping[str, QueryTemplate], entity_types: Sequence[str],
                             prompt_mode: str) -> None:
    """What both builders require: a known prompt mode (ValueError) and a template per type (TemplateError)."""
    if prompt_mode not in PROMPT_MODES:
        raise ValueError(f"prompt_mode must be one of {PROMPT_MODES}, not {prompt_mode!r}")
    missing = [t for t in entity_types if t not in templates]
    if missing:
        raise TemplateError(f"no template for entity type(s) {', '.join(missing)}")


class TripletBuilder:
    """Turns texts (and, for training, their gold spans) into triplets for a fixed tokenizer and prompt mode."""

    def __init__(self, tokenizer, templates: Mapping[str, QueryTemplate], entity_types: Sequence[str], *,
                 prompt_mode: str = "hybrid", max_length: int = 128, window_overlap: int = 32) -> None:
        _builder_arguments_check(templates, entity_types, prompt_mode)
        self.tokenizer = tokenizer
        self.entity_types = tuple(entity_types)
        self.prompt_mode = prompt_mode
        self.max_length = max_length
        self.window_overlap = window_overlap
        self.templates: dict[str, QueryTemplate] = {}
        self._queries: dict[str, tuple[list[int], list[int]]] = {}
        self.templates_set(templates)

    def templates_set(self, templates: Mapping[str, QueryTemplate]) -> None:
        """Swap hard templates (e.g. edited by an admin). Soft-prompt lengths stay those the model was trained with."""
        merged = dict(self.templates)
        for entity_type in self.entity_types:
            if entity_type in templates:
                incoming = templates[entity_type]
                if entity_type in self.templates:
                    incoming = replace(incoming, soft_prompt_length=self.templates[entity_type].soft_prompt_length)
                template_validate(incoming, tokenizer=self.tokenizer)
                merged[entity_type] = incoming
        self.templates = merged
        self._queries = {t: self._query_ids(self.templates[t]) for t in self.entity_types}

    def _query_ids(self, template: QueryTemplate) -> tuple[list[int], list[int]]:
        """Token ids of the PROMPT part and its soft-slot mask."""
        words = template.anchor if self.prompt_mode == "plain" else template.hard_text()
        hard = self.tokenizer(words, add_special_tokens=False)["input_ids"]
        soft_length = template.soft_prompt_length if self.prompt_mode in ("soft", "hybrid") else 0
        if self.prompt_mode == "soft":
            hard = []
        ids = [self.tokenizer.mask_token_id] * soft_length + hard
        return ids, [1] * soft_length + [0] * len(hard)

    def soft_init_ids(self, entity_type: str) -> list[int]:
        """Token ids whose embeddings initialise the type's soft slots: the hard template, cycled to length."""
        template = self.templates[entity_type]
        ids = self.tokenizer(template.hard_text(), add_special_tokens=False)["input_ids"]
        return [ids[i % len(ids)] for i in range(template.soft_prompt_length)]

    def build(self, texts: Sequence[str], types_per_text: Sequence[Sequence[str]],
              spans_per_text: Sequence[Sequence[tuple[int, int, str]]] | None = None) -> list[Triplet]:
        if not texts:
            return []  # the fast tokenizer fails on an empty batch
        encoded = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        triplets: list[Triplet] = []
        for text_index, text in enumerate(texts):
            ids = encoded["input_ids"][text_index]
            offsets = [tuple(o) for o in encoded["offset_mapping"][text_index]]
            starts = [_is_word_start(text, s) for s, _ in offsets]
            ends = [_is_word_end(text, e) for _, e in offsets]
            for entity_type in types_per_text[text_index]:
                query_ids, soft_mask = self._queries[entity_type]
                budget = self.max_length - len(query_ids) - 3
                gold = [(s, e) for s, e, t in (spans_per_text[text_index] if spans_per_text else []) if t == entity_type]
                for lo, hi in _windows(len(ids), budget, self.window_overlap, starts):
                    triplets.append(self._triplet(text_index, entity_type, query_ids, soft_mask,
                                                  ids[lo:hi], offsets[lo:hi], starts[lo:hi], ends[lo:hi], gold))
        return triplets

    def _triplet(self, text_index, entity_type, query_ids, soft_mask, ids, offsets, starts, ends, gold) -> Triplet:
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        prefix = 2 + len(query_ids)  # [CLS] query [SEP]
        none = (-1, -1)
        triplet = Triplet(
            text_index=text_index, type=entity_type, type_index=self.entity_types.index(entity_type),
            input_ids=[cls, *query_ids, sep, *ids, sep],
            token_type_ids=[0] * prefix + [1] * (len(ids) + 1),
            soft_mask=[0, *soft_mask, 0] + [0] * (len(ids) + 1),
            offsets=[none] * prefix + list(offsets) + [none],
            word_start=[0] * prefix + [int(s) for s in starts] + [0],
            word_end=[0] * prefix + [int(e) for e in ends] + [0],
        )
        if offsets:
            window_start, window_end = offsets[0][0], offsets[-1][1]
            for char_start, char_end in gold:
                if char_start < window_start or char_end > window_end:
                    continue  # the mention is cut by the window edge; a neighbouring window holds it whole
                start_token = next(i for i, (s, e) in enumerate(offsets) if e > char_start)
                end_token = max(i for i, (s, e) in enumerate(offsets) if s < char_end)
                if start_token <= end_token:
                    triplet.gold_spans.append((prefix + start_token, prefix + end_token))
        return triplet


def _is_word_start(text: str, char: int) -> bool:
    return char == 0 or not text[char - 1].isalnum() or not text[char].isalnum()


def _is_word_end(text: str, char: int) -> bool:
    return char >= len(text) or not text[char].isalnum() or not text[char - 1].isalnum()


def _windows(length: int, budget: int, overlap: int, word_starts: Sequence[bool]) -> list[tuple[int, int]]:
    """Token windows of at most `budget` tokens overlapping by about `overlap`, cut at word starts."""
    if budget <= 0:
        raise TemplateError("the prompt leaves no room for the text; shorten the template or raise max_length")
    if length <= budget:
        return [(0, length)]
    windows = []
    lo = 0
    while True:
        hi = min(lo + budget, length)
        while hi < length and hi > lo + 1 and not word_starts[hi]:
            hi -= 1  # do not split a word between windows
        windows.append((lo, hi))
        if hi >= length:
            return windows
        next_lo = max(hi - overlap, lo + 1)
        while next_lo < hi and not word_starts[next_lo]:
            next_lo += 1
        lo = next_lo


def documents_to_triplets(builder: TripletBuilder, documents: Sequence[Document]) -> list[Triplet]:
    """Training/evaluation triplets: only the types each corpus annotates (no false negatives)."""
    types = [[t for t in builder.entity_types if t in doc.types] for doc in documents]
    spans = [[(s.start, s.end, s.type) for s in doc.spans] for doc in documents]
    return builder.build([doc.text for doc in documents], types, spans)


# ---- one pass: every type's prompt and the text in one encoder input ------------------------------------

@dataclass
class PassWindow:
    """One text window for the one-pass model. Lists run over the context: the window's text tokens and the
    closing [SEP] (offsets (-1, -1)). `gold[t]` holds type index t's spans as (start, end) token indices,
    inclusive; `types` are the type indices the source annotates (the others are masked out of the loss)."""

    text_index: int
    input_ids: list[int]
    offsets: list[tuple[int, int]]
    word_start: list[int]
    word_end: list[int]
    types: tuple[int, ...] = ()
    gold: dict[int, list[tuple[int, int]]] = field(default_factory=dict)


class OnePassBuilder:
    """Texts -> `PassWindow`s sharing one prompt block `[CLS] <marker_1> <soft_1..K> PROMPT_1 ... [SEP]`.

    `prompt_ids` / `prompt_slots` ([P] each; slot -1 = a token, t*(K+1) = type t's marker, t*(K+1)+1+k = its
    soft slot k) and `marker_positions` ([T]) are what the model needs besides the windows."""

    def __init__(self, tokenizer, templates: Mapping[str, QueryTemplate], entity_types: Sequence[str], *,
                 prompt_mode: str = "hybrid", max_length: int = 256, window_overlap: int = 32) -> None:
        _builder_arguments_check(templates, entity_types, prompt_mode)
        self.tokenizer = tokenizer
        self.entity_types = tuple(entity_types)
        self.prompt_mode = prompt_mode
        self.max_length = max_length
        self.window_overlap = window_overlap
        self.templates: dict[str, QueryTemplate] = {}
        self.templates_set(templates)

    def templates_set(self, templates: Mapping[str, QueryTemplate]) -> None:
        """Swap hard templates; soft-prompt lengths stay those the model was trained with (one for all types)."""
        merged = dict(self.templates)
        for entity_type in self.entity_types:
            if entity_type in templates:
                incoming = templates[entity_type]
                if entity_type in self.templates:
                    incoming = replace(incoming, soft_prompt_length=self.templates[entity_type].soft_prompt_length)
                template_validate(incoming, tokenizer=self.tokenizer)
                merged[entity_type] = incoming
        lengths = {merged[t].soft_prompt_length for t in self.entity_types}
        if len(lengths) > 1:
            raise TemplateError(f"one-pass prompts need one soft-prompt length for every type, not {sorted(lengths)}")
        ids, slots, markers = [self.tokenizer.cls_token_id], [-1], []
        for type_index, entity_type in enumerate(self.entity_types):
            template = merged[entity_type]
            soft = template.soft_prompt_length if self.prompt_mode in ("soft", "hybrid") else 0
            words = "" if self.prompt_mode == "soft" else (
                template.anchor if self.prompt_mode == "plain" else template.hard_text())
            hard = self.tokenizer(words, add_special_tokens=False)["input_ids"] if words else []
            stride = template.soft_prompt_length + 1
            markers.append(len(ids))
            ids += [self.tokenizer.mask_token_id] * (1 + soft) + hard
            slots += [type_index * stride + k for k in range(1 + soft)] + [-1] * len(hard)
        ids.append(self.tokenizer.sep_token_id)
        slots.append(-1)
        if len(ids) + 2 > self.max_length:
            raise TemplateError(f"the prompts take {len(ids)} tokens of max_length={self.max_length}; "
                                "shorten the templates or raise max_length")
        self.templates = merged
        self.prompt_ids, self.prompt_slots, self.marker_positions = ids, slots, markers

    def soft_init_ids(self, entity_type: str) -> list[int]:
        template = self.templates[entity_type]
        ids = self.tokenizer(template.hard_text(), add_special_tokens=False)["input_ids"]
        return [ids[i % len(ids)] for i in range(template.soft_prompt_length)]

    def marker_init_ids(self, entity_type: str) -> list[int]:
        return self.tokenizer(self.templates[entity_type].anchor, add_special_tokens=False)["input_ids"]

    def build(self, texts: Sequence[str], types_per_text: Sequence[Sequence[str]] | None = None,
              spans_per_text: Sequence[Sequence[tuple[int, int, str]]] | None = None) -> list[PassWindow]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        budget = self.max_length - len(self.prompt_ids) - 1
        windows: list[PassWindow] = []
        for text_index, text in enumerate(texts):
            ids = encoded["input_ids"][text_index]
            offsets = [tuple(o) for o in encoded["offset_mapping"][text_index]]
            starts = [_is_word_start(text, s) for s, _ in offsets]
            ends = [_is_word_end(text, e) for _, e in offsets]
            wanted = self.entity_types if types_per_text is None else types_per_text[text_index]
            types = tuple(i for i, t in enumerate(self.entity_types) if t in wanted)
            spans = spans_per_text[text_index] if spans_per_text else []
            for lo, hi in _windows(len(ids), budget, self.window_overlap, starts):
                window = PassWindow(text_index, ids[lo:hi] + [self.tokenizer.sep_token_id],
                                    offsets[lo:hi] + [(-1, -1)], [int(s) for s in starts[lo:hi]] + [0],
                                    [int(e) for e in ends[lo:hi]] + [0], types)
                window_offsets = offsets[lo:hi]
                if window_offsets:
                    window_start, window_end = window_offsets[0][0], window_offsets[-1][1]
                    for char_start, char_end, entity_type in spans:
                        if entity_type not in self.entity_types or char_start < window_start or char_end > window_end:
                            continue  # out of scope, or cut by the window edge (a neighbouring window holds it)
                        type_index = self.entity_types.index(entity_type)
                        if type_index not in types:
                            continue
                        start = next(i for i, (s, e) in enumerate(window_offsets) if e > char_start)
                        end = max(i for i, (s, e) in enumerate(window_offsets) if s < char_end)
                        if start <= end:
                            window.gold.setdefault(type_index, []).append((start, end))
                windows.append(window)
        return windows


def documents_to_windows(builder: OnePassBuilder, documents: Sequence[Document]) -> list[PassWindow]:
    """Training/evaluation windows; each carries the types its corpus annotates (the others are masked)."""
    types = [[t for t in builder.entity_types if t in doc.types] for doc in documents]
    spans = [[(s.start, s.end, s.type) for s in doc.spans] for doc in documents]
    return builder.build([doc.text for doc in documents], types, spans)
