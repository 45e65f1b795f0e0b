"""The `Extractor`: load a model folder once (`ner_engine.artifacts`), then extract entities from many texts."""
from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from ner_engine.artifacts import PRECISIONS, artifact_load, model_dir_resolve, model_quantize_int8
from ner_engine.backbones import device_resolve, tokenizer_load
from ner_engine.batching import triplets_predict, windows_predict
from ner_engine.context import ContextPipeline
from ner_engine.context.surface import candidates_original, model_views
from ner_engine.modeling import PromptBioMRC
from ner_engine.triplets import OnePassBuilder, QueryTemplate, TripletBuilder
from ner_engine.types import Entity


class Extractor:
    """Thread-safe inference: every (text, type) query of a call runs in the same batched forward passes."""

    # Resolve invisible characters, abbreviations and misspellings before the model (spans stay in the original).
    surface_resolve: bool = True

    def __init__(self, model: PromptBioMRC, templates: Mapping[str, QueryTemplate], *, device: str = "cpu",
                 model_version: str = "unversioned", batch_size: int = 64, threshold: float | None = None,
                 context: bool = True) -> None:
        config = model.config
        self.model = model
        self.device = device
        self.model_version = model_version
        self.template_version = "shipped"
        self.batch_size = batch_size
        self.threshold = config.decode_threshold if threshold is None else threshold
        self.tokenizer = tokenizer_load(config.backbone)
        # per_type: one query per (text, type); one_pass: every type from one encoder pass per text window.
        kind = OnePassBuilder if config.query_mode == "one_pass" else TripletBuilder
        self.builder = kind(self.tokenizer, templates, config.entity_types, prompt_mode=config.prompt_mode,
                            max_length=config.max_length, window_overlap=config.window_overlap)
        self._lock = threading.Lock()
        # Clinical context (assertion, attributes, codes) per entity; vocabularies load lazily, once.
        self.context = None
        if context:
            self.context = ContextPipeline()

    @classmethod
    def load(cls, model: str | Path = "default", *, device: str = "auto", precision: str = "fp32",
             **kwargs) -> "Extractor":
        """`precision="int8"` quantises the encoder for CPU inference (see `model_quantize_int8`)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        directory = model_dir_resolve(model)
        device = device_resolve(device)
        if precision == "int8" and device != "cpu":
            raise ValueError("int8 precision is for CPU inference; on a GPU use fp32 (autocast) instead")
        network, templates = artifact_load(directory, device=device)
        if precision == "int8":
            network = model_quantize_int8(network)
        card_path = directory / "model_card.json"
        version = json.loads(card_path.read_text()).get("version", directory.name) if card_path.exists() else directory.name
        return cls(network, templates, device=device, model_version=version, **kwargs)

    @property
    def entity_types(self) -> tuple[str, ...]:
        return self.builder.entity_types

    @property
    def templates(self) -> dict[str, QueryTemplate]:
        return dict(self.builder.templates)

    def set_templates(self, templates: Mapping[str, str | QueryTemplate | Mapping], *, version: str) -> None:
        """Replace hard templates (text only, or full entries); raises TemplateError and keeps the old ones
        when any is unusable."""
        current = self.builder.templates
        parsed: dict[str, QueryTemplate] = {}
        for entity_type, value in templates.items():
            if entity_type not in current:
                continue  # the model has no query for that type
            if isinstance(value, QueryTemplate):
                parsed[entity_type] = value
            elif isinstance(value, str):
                parsed[entity_type] = QueryTemplate(entity_type, current[entity_type].anchor, value,
                                                    current[entity_type].soft_prompt_length)
            else:
                parsed[entity_type] = QueryTemplate(entity_type, value.get("anchor", current[entity_type].anchor),
                                                    value["template"], current[entity_type].soft_prompt_length)
        with self._lock:
            self.builder.templates_set(parsed)
            self.template_version = version

    def _one_pass(self, texts: list[str], wanted: list[str]) -> list:
        """Every type is computed in the same pass; only `wanted` ones are decoded (the others cost nothing
        extra, and skipping them keeps a type out of the cross-type overlap resolution)."""
        if not wanted or not texts:
            return [[] for _ in texts]
        windows = self.builder.build(texts, [wanted] * len(texts))
        return windows_predict(self.model, self.builder, windows, len(texts), batch_size=self.batch_size,
                               device=self.device, pad_id=self.tokenizer.pad_token_id or 0, threshold=self.threshold)

    def extract(self, texts: Sequence[str], *, types: Sequence[str] | None = None) -> list[list[Entity]]:
        if isinstance(texts, str):
            raise TypeError("extract() takes a list of texts")
        # An empty list asks for no type (a document whose corpus annotates none), not for every type.
        wanted = [t for t in (self.entity_types if types is None else types) if t in self.entity_types]
        # Pre-processing: the model reads each text with format characters removed, abbreviations expanded and
        # misspellings corrected (ner_engine.context.surface); spans are mapped back to the original below.
        originals = list(texts)
        views = model_views(originals) if self.surface_resolve else None
        texts = [view.text for view in views] if views else originals
        with self._lock:
            if isinstance(self.builder, OnePassBuilder):
                candidates = self._one_pass(list(texts), wanted)
            else:
                triplets = self.builder.build(list(texts), [wanted] * len(texts))
                if not triplets:
                    return [[] for _ in texts]
                candidates = triplets_predict(self.model, triplets, len(texts), batch_size=self.batch_size,
                                              device=self.device, pad_id=self.tokenizer.pad_token_id or 0,
                                              threshold=self.threshold)
        if views:
            results = [[Entity(start, end, c.type, view.original[start:end], round(c.score, 4))
                        for start, end, c in candidates_original(view, found)]
                       for view, found in zip(views, candidates)]
        else:
            results = [[Entity(c.start, c.end, c.type, text[c.start : c.end], round(c.score, 4)) for c in found]
                       for text, found in zip(texts, candidates)]
        if self.context is not None:
            for text, entities in zip(originals, results):
                self.context.contextualise(text, entities)
        return results
