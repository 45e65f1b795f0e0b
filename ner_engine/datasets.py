"""Dataset registry: where each corpus lives, how its labels map to project entity types, and its splits.

Each corpus declares the types it annotates (`Document.types`): MRC then builds queries only for those,
so a corpus that does not annotate symptoms never teaches the model that a symptom is "no entity".
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ner_engine.lay_data import generated_documents, symptom_relabel
from ner_engine.readers import brat_documents, conll_documents
from ner_engine.types import Document, Span

DEFAULT_DATA_DIR = Path(os.environ.get("NER_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label_map: dict[str, str]
    load: Callable[[Path, str], list[Document]]
    description: str
    licence: str
    # Types folded together for evaluation only, e.g. MedRed's DIS label covers symptoms and diseases.
    eval_merge: dict[str, str] = field(default_factory=dict)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.label_map.values())))


def _conll(relative: str, split_files: dict[str, str], separator: str | None = "\t"):
    def load(data_dir: Path, split: str) -> list[Document]:
        path = data_dir / relative / split_files[split]
        return conll_documents(path, separator=separator, doc_prefix=f"{split}-")

    return load


def _bc5cdr(data_dir: Path, split: str) -> list[Document]:
    return conll_documents(data_dir / "BC5CDR/conll" / {"train": "train.tsv", "dev": "devel.tsv", "test": "test.tsv"}[split],
                           separator="\t", doc_prefix=f"{split}-")


def maccrobat_split(ids: list[str]) -> dict[str, list[str]]:
    """The fixed split of MACCROBAT2020 (no official one): PMIDs sorted numerically, every 10th from the
    first to test, every 10th from the fifth to dev, the rest to train: 160 / 20 / 20 documents."""
    ordered = sorted(ids, key=int)
    split: dict[str, list[str]] = {name: [] for name in SPLITS}
    for index, pmid in enumerate(ordered):
        bucket = "test" if index % 10 == 0 else "dev" if index % 10 == 5 else "train"
        split[bucket].append(pmid)
    return split


def _maccrobat(data_dir: Path, split: str) -> list[Document]:
    directory = data_dir / "MACCROBAT2020/brat"
    ids = [path.stem for path in directory.glob("*.txt")]
    return brat_documents(directory, ids=maccrobat_split(ids)[split])


def _medred(data_dir: Path, split: str) -> list[Document]:
    return conll_documents(data_dir / f"MedRed/train_dev_test/MedRed_{split}.txt", separator=" ", doc_prefix=f"{split}-")


def _symptom_relabelled(load: Callable[[Path, str], list[Document]], disease_label: str):
    """A corpus loader whose sign/symptom Disease mentions come back labelled `Symptom` (see lay_data)."""
    def relabelled(data_dir: Path, split: str) -> list[Document]:
        return symptom_relabel(load(data_dir, split), disease_label=disease_label)

    return relabelled


def _generated(data_dir: Path, split: str) -> list[Document]:
    documents = generated_documents(split, data_dir=data_dir)
    for document in documents:  # the loader speaks corpus labels; the generator writes project types
        document.spans = [Span(s.start, s.end, s.type.lower()) for s in document.spans]
    return documents


REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("ncbi-disease", {"Disease": "DISEASE"},
                    _conll("NCBI-disease/conll", {"train": "train.tsv", "dev": "devel.tsv", "test": "test.tsv"}),
                    "NCBI-disease, PubMed abstracts (Dogan et al. 2014)", "public domain (NLM)"),
        DatasetSpec("bc5cdr", {"Disease": "DISEASE", "Chemical": "DRUG"}, _bc5cdr,
                    "BioCreative V CDR, PubMed abstracts (Li et al. 2016); Chemical is read as DRUG", "public domain mark"),
        DatasetSpec("bc5cdr-disease", {"Disease": "DISEASE"}, _bc5cdr, "BC5CDR, disease mentions only", "public domain mark"),
        DatasetSpec("bc5cdr-chemical", {"Chemical": "DRUG"}, _bc5cdr, "BC5CDR, chemical mentions as DRUG", "public domain mark"),
        DatasetSpec("maccrobat", {"Sign_symptom": "SYMPTOM", "Disease_disorder": "DISEASE", "Medication": "DRUG",
                                  "Severity": "SEVERITY", "Duration": "DURATION", "Biological_structure": "ANATOMY"},
                    _maccrobat, "MACCROBAT2020 clinical case reports (Caufield et al. 2019), fixed 160/20/20 split",
                    "CC BY 4.0"),
        DatasetSpec("medred", {"DIS": "DISEASE", "DRUG": "DRUG"}, _medred,
                    "MedRed Reddit posts (Scepanovic et al. 2020); DIS covers symptoms and diseases, evaluated merged",
                    "unverified (research only)", eval_merge={"SYMPTOM": "DISEASE"}),
        # Training variants: Disease mentions coded as signs/symptoms (ICD-10-CM chapter R, pain/ache heads)
        # are SYMPTOM. Scored with SYMPTOM folded into DISEASE, i.e. against the corpus's own labels.
        DatasetSpec("ncbi-disease-sx", {"Disease": "DISEASE", "Symptom": "SYMPTOM"},
                    _symptom_relabelled(_conll("NCBI-disease/conll", {"train": "train.tsv", "dev": "devel.tsv",
                                                                      "test": "test.tsv"}), "Disease"),
                    "NCBI-disease with sign/symptom mentions relabelled SYMPTOM (training)", "public domain (NLM)",
                    eval_merge={"SYMPTOM": "DISEASE"}),
        DatasetSpec("bc5cdr-sx", {"Disease": "DISEASE", "Symptom": "SYMPTOM", "Chemical": "DRUG"},
                    _symptom_relabelled(_bc5cdr, "Disease"),
                    "BC5CDR with sign/symptom mentions relabelled SYMPTOM (training)", "public domain mark",
                    eval_merge={"SYMPTOM": "DISEASE"}),
        DatasetSpec("medred-sx", {"DIS": "DISEASE", "Symptom": "SYMPTOM", "DRUG": "DRUG"},
                    _symptom_relabelled(_medred, "DIS"),
                    "MedRed with sign/symptom DIS mentions relabelled SYMPTOM (training)",
                    "unverified (research only)", eval_merge={"SYMPTOM": "DISEASE"}),
        DatasetSpec("lay-generated", {t.lower(): t for t in ("DISEASE", "DRUG", "DURATION", "SEVERITY", "SYMPTOM")},
                    _generated, "template sentences in patient language with exact spans (ner_engine.lay_data)",
                    "project data; HPO layperson synonyms under the HPO licence (attribution)"),
        DatasetSpec("anatem", {"Anatomy": "ANATOMY"},
                    _conll("AnatEM/conll", {"train": "train.tsv", "dev": "devel.tsv", "test": "test.tsv"}),
                    "AnatEM anatomy mentions (Pyysalo & Ananiadou 2014)", "CC BY-SA 3.0"),
    )
}


def dataset_load(name: str, split: str, *, data_dir: str | Path | None = None) -> list[Document]:
    """Load a registered corpus split (or a JSON-lines export via `jsonl:PATH`) mapped to project types."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if name.startswith("jsonl:"):
        return documents_read_jsonl(Path(name[len("jsonl:"):]))
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))} or jsonl:PATH")
    spec = REGISTRY[name]
    root = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    if not root.exists():
        raise FileNotFoundError(f"data directory {root} not found (pass --data-dir or set NER_DATA_DIR)")
    documents = spec.load(root, split)
    for document in documents:
        document.spans = sorted(Span(s.start, s.end, spec.label_map[s.type]) for s in document.spans
                                if s.type in spec.label_map)
        document.types = spec.types
    return documents


def documents_write_jsonl(documents: list[Document], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for document in documents:
            handle.write(json.dumps({
                "id": document.id, "text": document.text, "types": list(document.types),
                "spans": [{"start": s.start, "end": s.end, "type": s.type} for s in document.spans],
            }, ensure_ascii=False) + "\n")


def documents_read_jsonl(path: str | Path) -> list[Document]:
    documents = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            data = json.loads(line)
            text = data["text"]
            spans = [Span(int(s["start"]), int(s["end"]), s["type"]) for s in data.get("spans", [])]
            for span in spans:
                if not 0 <= span.start < span.end <= len(text):
                    raise ValueError(f"{path}:{line_number}: span {span} outside the text")
            types = tuple(data.get("types") or sorted({s.type for s in spans}))
            documents.append(Document(id=str(data.get("id", line_number)), text=text, spans=sorted(spans), types=types))
    return documents
