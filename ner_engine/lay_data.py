"""Training signal in patient language.

* `symptom_relabel`: Disease mentions of the biomedical corpora whose ICD-10-CM code (lexical normaliser of
  `ner_engine.context`, embeddings off) falls in chapter R ("Symptoms, signs and abnormal clinical and
  laboratory findings"), or whose head is pain/ache, become SYMPTOM, so the model learns the distinction
  instead of a retype after extraction. Codes are cached per mention in `var/ner_cache/symptom_codes.json`.
* `generated_documents`: sentences from templates with exact gold spans, filled from `data/lay_phrases.json`
  (written for the project) and the HPO layperson synonyms of symptom branches (hp.obo in the shared data).

Both are deterministic: the same inputs give the same documents.
"""
from __future__ import annotations

import gzip
import json
import os
import random
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from ner_engine.context.normalisation import Normaliser
from ner_engine.types import Document, Span

PHRASES_FILE = Path(__file__).with_name("data") / "lay_phrases.json"
CACHE_DIR = Path(os.environ.get("NER_CACHE", Path(__file__).resolve().parents[1] / "var" / "ner_cache"))
GENERATED_TYPES = ("DISEASE", "DRUG", "DURATION", "SEVERITY", "SYMPTOM")
# HPO branches whose layperson synonyms are complaints a patient reports (not morphology or lab findings).
HPO_SYMPTOM_ROOTS = {
    "HP:0025142",  # Constitutional symptom
    "HP:0012531",  # Pain
    "HP:0002017",  # Nausea and vomiting
    "HP:0011458",  # Abdominal symptom
    "HP:0012735",  # Cough
    "HP:0002094",  # Dyspnea
    "HP:0000989",  # Pruritus
    "HP:0002321",  # Vertigo
    "HP:0012378",  # Fatigue
    "HP:0002360",  # Sleep abnormality
    "HP:0002019",  # Constipation
    "HP:0002014",  # Diarrhea
    "HP:0000988",  # Skin rash
    "HP:0001962",  # Palpitations
}
_PAIN_HEAD = re.compile(r"\b(pain|pains|ache|aches|aching|soreness|cramps?)$", re.IGNORECASE)


@lru_cache(maxsize=1)
def phrases() -> dict:
    return json.loads(PHRASES_FILE.read_text(encoding="utf-8"))


def hpo_lay_symptoms(path: str | Path) -> list[str]:
    """Layperson synonyms (<= 4 words, lower-cased) of HPO terms under HPO_SYMPTOM_ROOTS, sorted."""
    parents: dict[str, list[str]] = {}
    lay: dict[str, list[str]] = {}
    current = None
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("id: HP:"):
                current = line[4:].strip()
                parents[current] = []
            elif current and line.startswith("is_a: "):
                parents[current].append(line[6:16])
            elif current and line.startswith("synonym: ") and "layperson" in line:
                lay.setdefault(current, []).append(line.split('"')[1])
            elif line.startswith("[Typedef]"):
                current = None

    @lru_cache(maxsize=None)
    def under(term: str) -> bool:
        return term in HPO_SYMPTOM_ROOTS or any(under(p) for p in parents.get(term, []))

    found = {s.lower() for term, synonyms in lay.items() if under(term) for s in synonyms
             if len(s.split()) <= 4 and "," not in s and "(" not in s}
    return sorted(found)


def generated_documents(split: str, *, data_dir: str | Path, count: int | None = None) -> list[Document]:
    """Template sentences with exact spans. train: 4000, dev: 300, test: 300 (seeds 0 / 1 / 2); the HPO
    synonyms (`data_dir`/vocab/HPO/hp.obo.gz, left out when absent) are split by a hash-free rule (sorted,
    every 5th to dev/test) so dev never sees train's."""
    data = phrases()
    hpo_path = Path(data_dir) / "vocab" / "HPO" / "hp.obo.gz"
    hpo = hpo_lay_symptoms(hpo_path) if hpo_path.exists() else []
    held_out = split != "train"
    hpo = [s for i, s in enumerate(hpo) if (i % 5 == 0) == held_out]
    symptoms = list(data["SYMPTOM"]) + hpo
    seed = {"train": 0, "dev": 1, "test": 2}[split]
    rng = random.Random(seed)
    documents = []
    for index in range(count or (4000 if split == "train" else 300)):
        template = rng.choice(data["TEMPLATES"])
        text, spans = "", []
        for literal, slot in _template_parts(template):
            text += literal
            if slot is None:
                continue
            value, entity_type = _fill(slot, rng, data, symptoms)
            if rng.random() < 0.3 and text == "":
                value = value[:1].upper() + value[1:]
            if entity_type:
                spans.append(Span(len(text), len(text) + len(value), entity_type))
            text += value
        if rng.random() < 0.3:
            text = text.lower()
        documents.append(Document(id=f"gen-{split}-{index}", text=text, spans=sorted(spans), types=GENERATED_TYPES))
    return documents


_SLOT = re.compile(r"\{([A-Z_]+)\}")


def _template_parts(template: str):
    position = 0
    for match in _SLOT.finditer(template):
        yield template[position:match.start()], match.group(1)
        position = match.end()
    yield template[position:], None


def _fill(slot: str, rng: random.Random, data: dict, symptoms: Sequence[str]) -> tuple[str, str | None]:
    if slot == "SYMPTOM":
        return rng.choice(symptoms), "SYMPTOM"
    if slot == "SYMPTOM_STATE":
        return rng.choice(data["SYMPTOM_STATE"]), "SYMPTOM"
    if slot == "DURATION_BARE":
        return rng.choice(data["DURATION"]), "DURATION"
    if slot == "HABIT":
        return rng.choice(data["HABITS"]), None
    if slot == "FAMILY":
        return rng.choice(data["FAMILY"]).capitalize(), None
    return rng.choice(data[slot]), slot


# ---- SYMPTOM relabelling of Disease mentions -------------------------------------------------------------

def symptom_codes(mentions: Sequence[str]) -> dict[str, bool]:
    """{mention: is a sign/symptom} for lower-cased mentions, cached on disk across runs."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / "symptom_codes.json"
    cached: dict[str, bool] = json.loads(path.read_text()) if path.exists() else {}
    missing = sorted({m for m in mentions if m not in cached})
    if missing:
        normaliser = Normaliser(embeddings="off", dictionaries=())
        for mention in missing:
            codes = normaliser.normalise(mention, "DISEASE", systems=["ICD-10-CM"])
            chapter_r = bool(codes) and codes[0]["code"].startswith("R") and codes[0]["score"] >= 0.85
            cached[mention] = chapter_r or bool(_PAIN_HEAD.search(mention))
        path.write_text(json.dumps(cached, indent=0, sort_keys=True))
    return {m: cached[m] for m in mentions}


def symptom_relabel(documents: Sequence[Document], *, disease_label: str = "Disease",
                    symptom_label: str = "Symptom") -> list[Document]:
    """Documents in the corpus's own labels with sign/symptom Disease mentions relabelled `symptom_label`."""
    mentions = sorted({d.text[s.start:s.end].lower() for d in documents for s in d.spans if s.type == disease_label})
    is_symptom = symptom_codes(mentions)
    for document in documents:
        document.spans = sorted(
            Span(s.start, s.end, symptom_label) if s.type == disease_label
            and is_symptom[document.text[s.start:s.end].lower()] else s for s in document.spans)
    return list(documents)
