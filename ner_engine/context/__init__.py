"""Clinical context for extracted entities: assertion, linked attributes and codes. Pure Python.

    from ner_engine.context import entities_contextualise
    entities = entities_contextualise(text, entities)
    entity.attributes["assertion"]   # "present" | "absent" | "possible" | "historical" | "hypothetical" | "family"
    entity.attributes["experiencer"] # "patient" | "other" (a relative's or someone else's: "if my son gets a rash")
    entity.attributes["attributes"]  # {"duration"|"severity"|"frequency"|"body_site": {"text","start","end"}}
    entity.attributes["codes"]       # [{"system","code","name","score"}], best first; [] = uncoded

Codes come from vocabularies shipped in pip packages, plus any mention -> code dictionaries a deployment
learned from its own copy of a coded corpus (`python -m ner_engine.context build-dictionary bc5cdr`, see
`ner_engine.context.dictionaries`), matched lexically and, where term embeddings are cached
(`python -m ner_engine.context build-embeddings`, see `ner_engine.context.embeddings`), by embedding similarity.

Only SYMPTOM / DISEASE / DRUG entities are annotated; DURATION / SEVERITY / ANATOMY entities from the model
are used as attribute candidates and left as they are.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Sequence

from ner_engine.context.assertion import ASSERTIONS, EXPERIENCERS, AssertionDetector
from ner_engine.context.attributes import KINDS, Attribute, attributes_find, attributes_link
from ner_engine.context.normalisation import DEFAULT_THRESHOLD, SYSTEMS_BY_TYPE, Normaliser
from ner_engine.context.language import LanguageResult, language_detect
from ner_engine.context.spelling import word_type
from ner_engine.context.surface import SurfaceView, mention_resolve, surface_view
from ner_engine.context.terms import body_sites
from ner_engine.types import CORE_TYPES, Entity

_POSSESSIVE = re.compile(r"\b(?:my|his|her|their|our|your|the|both|a|left|right|bilateral)\s+", re.IGNORECASE)

__all__ = ["ASSERTIONS", "EXPERIENCERS", "KINDS", "ContextPipeline", "LanguageResult", "codes_agreeing",
           "entities_contextualise", "language_detect"]


class ContextPipeline:
    """Holds the assertion rules and the normaliser (vocabularies load lazily, once, under a lock).
    `contextualise` is thread-safe: after loading, everything it reads is immutable."""

    def __init__(self, *, normalise: bool = True, threshold: float = DEFAULT_THRESHOLD,
                 normaliser: Normaliser | None = None) -> None:
        self.assertions = AssertionDetector()
        self.normalise = normalise
        self.normaliser = normaliser or Normaliser(threshold=threshold)

    def warm(self) -> None:
        """Load every vocabulary now instead of on first use (e.g. at worker start), with the term embeddings
        cached for them and the sentence encoder when there are any."""
        for entity_type in SYSTEMS_BY_TYPE:
            for system in self.normaliser.systems(entity_type):
                self.normaliser.vocabulary(system)
        self.normaliser.embeddings_warm()

    def _codes_with_site(self, query: str, site_text: str, entity_type: str, codes: list[dict]) -> list[dict]:
        """A mention that names no body site, with the one linked to it ("pain" ... "in my chest", "my legs are
        swollen"), is coded as the site and the mention together when that reaches a confident code (>= 0.9)."""
        if body_sites(query):
            return codes
        site = _POSSESSIVE.sub("", site_text).strip()
        for composed in (f"{site} {query}", f"{query} {site}"):
            found = self.normaliser.normalise(composed, entity_type)
            if found and found[0]["score"] >= 0.9:
                return found
        return codes

    def contextualise(self, text: str, entities: Sequence[Entity]) -> list[Entity]:
        core = [e for e in entities if e.type in CORE_TYPES]
        if not core:
            return list(entities)
        # Rules read the text without invisible format characters ("haven\u200ct"), offsets mapped both ways.
        view = surface_view(text, abbreviations=False, spelling=False)
        spans = [view.span_view(e.start, e.end) for e in core]
        assertions = self.assertions.detect_full(view.text, spans)
        model_spans = [(*view.span_view(e.start, e.end), e.type) for e in entities if e.type not in CORE_TYPES]
        linked = attributes_link(view.text, [(*span, e.type) for span, e in zip(spans, core)],
                                 attributes_find(view.text, model_spans))
        if view.changed:
            linked = [{kind: _attribute_original(attribute, view, text) for kind, attribute in found.items()}
                      for found in linked]
        # Codes are looked up for the mention as the patient meant it: abbreviations expanded, misspellings
        # corrected ("SOB" -> "shortness of breath", "hedache" -> "headache").
        queries = [mention_resolve(e.text) for e in core]
        codes = (self.normaliser.normalise_many([(query, e.type) for query, e in zip(queries, core)])
                 if self.normalise else [[] for _ in core])
        for entity, (assertion, experiencer), attributes, entity_codes, query in zip(core, assertions, linked, codes,
                                                                                  queries):
            entity.attributes["assertion"] = assertion
            entity.attributes["experiencer"] = experiencer
            entity.attributes["attributes"] = {kind: attributes[kind].to_dict() for kind in KINDS if kind in attributes}
            site = attributes.get("body_site")
            site_text = site.text if site is not None and not (entity.start <= site.start and site.end <= entity.end) else ""
            if not site_text:
                site_text = _site_neighbour(text, entity, core)
            if self.normalise and site_text and entity.type != "DRUG":
                entity_codes = self._codes_with_site(query, site_text, entity.type, entity_codes)
            entity.attributes["codes"] = codes_agreeing(entity_codes, f"{query} {site_text}")
            if entity.type == "DRUG" and _misread_drug(query):
                # A misspelt symptom is no medicine ("hedache", "diarrea"): the corrected word says what it is.
                entity.type = "SYMPTOM" if _misread_drug(query) == "symptom" else "DISEASE"
                entity.attributes["retyped_from"] = "DRUG"
                entity.attributes["codes"] = (self.normaliser.normalise(query, entity.type) if self.normalise
                                              else [])
            if entity.type == "DISEASE" and _is_symptom_code(entity.attributes["codes"]):
                # Biomedical corpora (BC5CDR, NCBI) label "headache" or "fever" as Disease; ICD-10-CM itself
                # files them under chapter R (symptoms and signs), which is what the consultation record needs.
                entity.type = "SYMPTOM"
                entity.attributes["retyped_from"] = "DISEASE"
        return list(entities)


def _site_neighbour(text: str, entity: Entity, core: Sequence[Entity]) -> str:
    """The text of another mention next to this one (at most 3 words between, no sentence end) that names only a
    body site: the model sometimes tags the site apart ("my [neck] feels [stiff]", "my [tummy] [hurts]")."""
    for other in core:
        if other is entity or not body_sites(other.text):
            continue
        words = [w for w in _POSSESSIVE.sub(" ", f" {other.text} ").split()]
        if not words or body_sites(" ".join(words)) != body_sites(other.text) or len(words) != len(
                [w for w in words if body_sites(w)]):
            continue
        gap = text[other.end:entity.start] if other.end <= entity.start else text[entity.end:other.start]
        if len(gap.split()) <= 3 and not re.search(r"[.!?;\n]", gap):
            return other.text
    return ""


def codes_agreeing(codes: list[dict], words: str) -> list[dict]:
    """The codes whose name names no body site that the mention and its linked body site (`words`) do not:
    "chest pain" is not "Pain in hip", "legs are swollen" is not "Swelling of inguinal region". An exact name
    (score 1.0) always agrees."""
    sites = body_sites(words)
    return [c for c in codes if c["score"] >= 1.0 or body_sites(c["name"]) <= sites]


def _attribute_original(attribute: Attribute, view: SurfaceView, text: str) -> Attribute:
    start, end = view.span_original(attribute.start, attribute.end)
    return Attribute(attribute.kind, start, end, text[start:end], attribute.source)


def _misread_drug(query: str) -> str | None:
    """"symptom" / "disease" when every word of a DRUG mention is a lexicon word of that type and none a
    medicine: the model read a misspelt symptom as a drug name."""
    types = {word_type(w) for w in query.lower().split()} - {None}
    if len(types) == 1 and types <= {"symptom", "disease"}:
        return next(iter(types))
    return None


def _is_symptom_code(codes: Sequence[dict]) -> bool:
    icd = next((c for c in codes if c["system"] == "ICD-10-CM"), None)
    return icd is not None and icd["code"].startswith("R")


_default: ContextPipeline | None = None
_default_lock = threading.Lock()


def pipeline_default() -> ContextPipeline:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = ContextPipeline()
    return _default


def entities_contextualise(text: str, entities: list[Entity], *, pipeline: ContextPipeline | None = None) -> list[Entity]:
    """Set `assertion`, `attributes` and `codes` in each SYMPTOM/DISEASE/DRUG entity's `attributes` (in place)
    and return the list."""
    return (pipeline or pipeline_default()).contextualise(text, entities)
