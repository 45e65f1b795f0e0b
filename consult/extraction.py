"""The single place the app talks to ner_engine: no other module of `consult` imports it.

What the rest of the app needs from the library is re-exported here (`TemplateError`, `CORE_TYPES`,
template validation, `model_card_read`, `model_dir_resolve`, `ner_engine_dir`); tests/test_structure.py
checks that nothing else in `consult` imports ner_engine. This module imports nothing from `consult`.

One Extractor per process, loaded lazily on first use (never at import: web processes and tests that
never extract must not pay for torch), guarded by a lock so that concurrent threads load it once.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

import ner_engine
# Pure Python, no torch: importing these never loads the model (torch and the model load on first use).
from ner_engine.backbones import device_resolve, tokenizer_load
from ner_engine.context import language_detect as context_language_detect
from ner_engine.context import pipeline_default
from ner_engine.context.assertion import AssertionDetector
from ner_engine.context.embeddings import SentenceEncoder
# Re-exported for the app.
from ner_engine.model_card import model_card_read
from ner_engine.triplets import MAX_TEMPLATE_TOKENS, QueryTemplate, TemplateError, template_validate
from ner_engine.types import CORE_TYPES, Entity

__all__ = [
    "BUILTIN_TEMPLATE_VERSION", "CORE_TYPES", "MAX_TEMPLATE_TOKENS", "ExtractionResult", "ModelUnavailable",
    "QueryTemplate", "TemplateError", "assertions_detect", "default_templates", "entities_extract", "sentences_encode",
    "extractor_get", "language_detect", "mention_context", "model_card_read", "model_dir_resolve",
    "model_unavailable_reason", "ner_engine_dir", "preview_extract", "template_tokenizer", "template_validate",
    "templates_apply", "term_codes", "texts_extract",
]

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_extractor: Any = None
_applied_template_version: str | None = None
_builtin_templates: dict[str, Any] = {}


@dataclass(frozen=True)
class ExtractionResult:
    entities: list[dict[str, Any]]  # {"start","end","type","text","score","attributes"}
    model_version: str
    template_version: str


class ModelUnavailable(RuntimeError):
    pass


def ner_engine_dir() -> Path:
    """The installed ner_engine package's folder (its templates.json and models/ live there)."""
    return Path(ner_engine.__file__).resolve().parent


def model_dir_resolve(model: str | Path) -> Path:
    """ner_engine.artifacts.model_dir_resolve."""
    # On call: ner_engine.artifacts imports torch, which web processes never need.
    from ner_engine.artifacts import model_dir_resolve as resolve

    return resolve(model)


def model_unavailable_reason() -> str | None:
    """Why the configured model cannot be loaded here, or None if it can (used to skip tests)."""
    try:
        # On call, and guarded: it imports torch, and whether it imports at all depends on the checkout.
        from ner_engine.artifacts import model_dir_resolve
    except Exception as exc:  # depends on the state of the ner_engine checkout
        return f"ner_engine.artifacts is not importable ({exc.__class__.__name__}: {exc})"
    directory = model_dir_resolve(settings.NER_MODEL)
    if not (directory / "config.json").exists():
        return f"NER model {settings.NER_MODEL!r} not found at {directory}"
    return None


def extractor_get() -> Any:
    global _extractor, _builtin_templates
    if _extractor is None:
        with _lock:
            if _extractor is None:
                try:
                    # On first use: the Extractor imports torch (never at import, see the module's docstring).
                    from ner_engine.extractor import Extractor

                    device = device_resolve("auto")
                    precision = settings.NER_PRECISION if device == "cpu" else "fp32"  # int8 is a CPU path
                    extractor = Extractor.load(settings.NER_MODEL, device=device, precision=precision)
                except Exception as exc:
                    raise ModelUnavailable(
                        f"The NER model {settings.NER_MODEL!r} could not be loaded "
                        f"({exc.__class__.__name__}: {exc}). Check NER_MODEL and the model folder."
                    ) from exc
                # What the model shipped with, to restore when an admin deactivates an override.
                _builtin_templates = extractor.templates
                _extractor = extractor
    return _extractor


BUILTIN_TEMPLATE_VERSION = "builtin"


def templates_apply(*, overrides: dict[str, dict[str, str]], version: str) -> None:
    """Hand admin-edited templates to the extractor, only when their combined version changed.

    `overrides` maps entity type to {"template": hard template text, "anchor"?: anchor word}; types
    without an override get the model's shipped template back, so deactivating an override undoes it.
    """
    global _applied_template_version
    if version == _applied_template_version:
        return
    if not overrides and _applied_template_version is None:
        # Nothing was ever overridden in this process: the model already uses its shipped templates.
        _applied_template_version = version
        return
    extractor = extractor_get()
    with _lock:
        if version != _applied_template_version:
            try:
                extractor.set_templates({**_builtin_templates, **overrides}, version=version)
            except Exception:
                # An unusable admin edit must not stop patients' messages: keep the working templates.
                logger.exception("Prompt templates version %s rejected by the extractor", version)
            _applied_template_version = version


def entities_extract(*, text: str) -> ExtractionResult:
    extractor = extractor_get()
    [found] = extractor.extract([text])
    entities = [
        {
            "start": int(entity.start),
            "end": int(entity.end),
            "type": str(entity.type),
            "text": str(entity.text),
            "score": float(entity.score),
            "attributes": dict(entity.attributes or {}),
        }
        for entity in found
    ]
    return ExtractionResult(
        entities=entities,
        model_version=str(getattr(extractor, "model_version", "") or ""),
        template_version=str(getattr(extractor, "template_version", "") or ""),
    )


def default_templates() -> dict[str, dict[str, Any]]:
    """The model's built-in templates, used to seed the admin's PromptTemplate table."""
    path = ner_engine_dir() / "templates.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def texts_extract(*, texts: list[str]) -> list[ExtractionResult]:
    """Several texts in one batched call (the integrators' extraction API)."""
    extractor = extractor_get()
    found = extractor.extract(list(texts))
    model_version = str(getattr(extractor, "model_version", "") or "")
    template_version = str(getattr(extractor, "template_version", "") or "")
    return [
        ExtractionResult(
            entities=[
                {"start": int(e.start), "end": int(e.end), "type": str(e.type), "text": str(e.text),
                 "score": float(e.score), "attributes": dict(e.attributes or {})}
                for e in entities
            ],
            model_version=model_version,
            template_version=template_version,
        )
        for entities in found
    ]


_template_tokenizer: Any = None


def template_tokenizer() -> Any | None:
    """The extractor's tokenizer, for checking an edited template's length in tokens; None when the model
    is not installed here. Loads only the tokenizer (not torch weights) when no extractor is loaded yet."""
    global _template_tokenizer
    if _extractor is not None:
        return getattr(_extractor, "tokenizer", None)
    if _template_tokenizer is None and model_unavailable_reason() is None:
        try:
            config = json.loads((model_dir_resolve(settings.NER_MODEL) / "config.json").read_text())
            _template_tokenizer = tokenizer_load(config["backbone"])
        except Exception:
            logger.exception("Could not load the tokenizer to check prompt template lengths")
            return None
    return _template_tokenizer


def mention_context(*, text: str, start: int, end: int, type: str,
                    others: list[tuple[int, int, str]] = ()) -> dict[str, Any]:
    """Clinical context (ner_engine.context) for one mention a clinician corrected or added.

    `text` is the whole patient message and `start`/`end` the mention's character offsets in it; `others`
    are the message's other mentions as (start, end, type): DURATION / SEVERITY / ANATOMY ones are the
    candidates its attributes are linked from, as in the extractor. Returns ner_engine.context's shape,
    {"assertion": str, "attributes": {kind: {"text", "start", "end"}}, "codes": [{"system", "code", "name",
    "score"}]}, for SYMPTOM / DISEASE / DRUG, and {} for other types (the context stage annotates only those).
    The clinician's type is kept: the chapter-R retyping of DISEASE spans applies to the model's types only.
    Uses the loaded extractor's pipeline when this process has one, else ner_engine.context's default
    (vocabularies load lazily, once per process; no model weights are needed).
    """
    if type not in CORE_TYPES:
        return {}
    pipeline = getattr(_extractor, "context", None) or pipeline_default()
    mention = Entity(start, end, type, text[start:end], 1.0)
    context = [Entity(s, e, t, text[s:e], 1.0) for s, e, t in others if t not in CORE_TYPES]
    pipeline.contextualise(text, [mention, *context])
    attributes = dict(mention.attributes)
    attributes.pop("retyped_from", None)
    return attributes


def term_codes(*, term: str, type: str) -> list[dict[str, Any]]:
    """Codes for a term a clinician typed (e.g. "neck stiffness" for the mention "neck feels really stiff"),
    from the same vocabularies and thresholds as the extractor's: [{"system", "code", "name", "score"}],
    best first; [] when nothing matches."""
    if type not in CORE_TYPES or not term.strip():
        return []
    pipeline = getattr(_extractor, "context", None) or pipeline_default()
    [codes] = pipeline.normaliser.normalise_many([(term.strip(), type)])
    return list(codes)


_assertion_detector: Any = None


def assertions_detect(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """ner_engine.context's assertion ("present" | "absent" | "possible" | "historical" | "hypothetical" |
    "family") for each (start, end) character span of `text`; the triage engine asks this for the findings it
    reads in the patient's words where no extracted mention covers them."""
    global _assertion_detector
    if _assertion_detector is None:
        _assertion_detector = AssertionDetector()
    return _assertion_detector.detect(text, list(spans))


_sentence_encoder: Any = None
_sentence_encoder_lock = threading.Lock()


def sentences_encode(texts: Sequence[str]) -> Any:
    """L2-normalised sentence embeddings [len(texts), 384] (numpy float32) from the pretrained MiniLM sentence
    encoder of ner_engine.context.embeddings (loaded once per process; not the NER model's fine-tuned encoder).
    The triage engine uses it to hear findings by meaning."""
    global _sentence_encoder
    with _sentence_encoder_lock:
        if _sentence_encoder is None:
            _sentence_encoder = SentenceEncoder().load()
    return _sentence_encoder.encode(list(texts))


def preview_extract(*, overrides: dict[str, dict[str, str]], text: str) -> ExtractionResult:
    """Extract `text` with the model's shipped templates overridden by `overrides` ({entity type: {"template",
    "anchor"?}}), for an admin's template preview. Runs on a query builder of its own that shares the loaded
    network and clinical-context pipeline: this process's extractor, its templates and its template version are
    left as they are. Raises ModelUnavailable without a model, TemplateError for an unusable template."""
    from ner_engine.extractor import Extractor  # on call: it imports torch

    base = extractor_get()
    preview = Extractor(base.model, _builtin_templates, device=base.device, model_version=base.model_version,
                        threshold=base.threshold, context=False)
    preview.context = base.context
    preview.set_templates({**_builtin_templates, **overrides}, version="preview")
    [found] = preview.extract([text])
    return ExtractionResult(
        entities=[{"start": int(e.start), "end": int(e.end), "type": str(e.type), "text": str(e.text),
                   "score": float(e.score), "attributes": dict(e.attributes or {})} for e in found],
        model_version=str(base.model_version), template_version="preview",
    )


def language_detect(*, text: str) -> dict[str, Any]:
    """{"language": ISO 639-1 code or "und", "english": bool, "confidence": 0-1} for a patient message
    (ner_engine.context.language_detect: Lingua, with a short-message and English-word guard)."""
    return context_language_detect(text).to_dict()
