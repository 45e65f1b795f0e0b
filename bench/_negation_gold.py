"""Gold entity spans and gold negation from MACCROBAT2020 and the CaseReportCorpus, for the assertion benches
(`context_eval.py`, `negation_compare.py`). Standard library and `ner_engine.datasets` only, so that a bench can
import it from another virtualenv (medspaCy's)."""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ner_engine.datasets import maccrobat_split  # noqa: E402

TARGET_LABELS = {"Sign_symptom": "SYMPTOM", "Disease_disorder": "DISEASE", "Medication": "DRUG"}


@dataclass(frozen=True)
class NegationDocument:
    """A text, the entity spans to assert (sorted, distinct) and, per span, whether the gold says negated."""
    id: str
    text: str
    spans: list[tuple[int, int]]
    negated: list[bool]


def prf(tp: int, predicted: int, gold: int) -> dict:
    p = tp / predicted if predicted else 0.0
    r = tp / gold if gold else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
            "tp": tp, "predicted": predicted, "gold": gold}


# ---------------------------------------------------------------- MACCROBAT2020
def maccrobat_read(directory: Path, pmid: str) -> dict:
    text = (directory / f"{pmid}.txt").read_text(encoding="utf-8")
    spans, events, negated, modify = {}, {}, set(), []
    for line in (directory / f"{pmid}.ann").read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if line.startswith("T"):
            label, _, offsets = fields[1].partition(" ")
            if ";" not in offsets:
                start, end = (int(v) for v in offsets.split())
                spans[fields[0]] = (start, end, label)
        elif line.startswith("E"):
            events[fields[0]] = fields[1].split()[0].split(":")[1]
        elif line.startswith("A") and fields[1].startswith("POLARITY") and fields[1].endswith("NEG"):
            negated.add(fields[1].split()[1])
        elif line.startswith("R") and fields[1].startswith("MODIFY"):
            _, arg1, arg2 = fields[1].split()
            modify.append((arg1.split(":")[1], arg2.split(":")[1]))
    resolve = lambda ref: events.get(ref, ref)  # noqa: E731
    negated_spans = {spans[resolve(e)][:2] for e in negated if resolve(e) in spans}
    links = [(spans[resolve(a)], spans[resolve(b)]) for a, b in modify if resolve(a) in spans and resolve(b) in spans]
    return {"text": text, "spans": list(spans.values()), "negated": negated_spans, "links": links}


def maccrobat_ids(data_dir: Path, split: str) -> list[str]:
    return maccrobat_split([p.stem for p in (data_dir / "MACCROBAT2020/brat").glob("*.txt")])[split]


def maccrobat_negation_document(pmid: str, doc: dict) -> NegationDocument:
    """Symptoms and diseases (Sign_symptom, Disease_disorder) of a `maccrobat_read` document; gold negated =
    POLARITY=NEG."""
    spans = sorted({(s, e) for s, e, label in doc["spans"] if TARGET_LABELS.get(label) in ("SYMPTOM", "DISEASE")})
    return NegationDocument(pmid, doc["text"], spans, [span in doc["negated"] for span in spans])


def maccrobat_negation_documents(data_dir: Path, split: str) -> list[NegationDocument]:
    return [maccrobat_negation_document(pmid, maccrobat_read(data_dir / "MACCROBAT2020/brat", pmid))
            for pmid in maccrobat_ids(data_dir, split)]


# ---------------------------------------------------------------- CaseReportCorpus
# The corpus's `modifier` entities are mostly negations but also "normal", "intact", values ("83 bpm"). A
# modifier is a negation when it contains a negation word: "no", "were negative", "without evidence",
# "free of signs", "absence", "negative or normal", "not reveal any abnormality".
NEGATION_MODIFIER = re.compile(r"(?<![\w-])(?:no|not|nor|neither|never|none|without|denied|denies|deny|negative|"
                               r"absent|absence|free of|ruled out)(?![\w-])", re.IGNORECASE)
CASE_REPORT_FILE = "CaseReportCorpus/CaseReportCorpus.bioc.json"


def case_report_split(document_ids: list[str]) -> dict[str, list[str]]:
    """The corpus has no official split. Fixed split by document id: ids sorted as strings, even positions
    (0, 2, 4, ...) dev, odd positions test (27 / 26 of the 53 documents). Rules are tuned on dev only."""
    ordered = sorted(document_ids)
    return {"dev": ordered[0::2], "test": ordered[1::2], "all": ordered}


def case_report_negated(passage: dict) -> set[str]:
    """Ids of the annotations that a negation modifier modifies (gold `absent`)."""
    by_id = {a["id"]: a for a in passage["annotations"]}
    negated = set()
    for relation in passage["relations"]:
        if relation["infons"]["type"] != "modifies":
            continue
        roles = {n["role"]: by_id.get(n["refid"]) for n in relation["nodes"]}
        governor, dependent = roles.get("Governor"), roles.get("Dependent")
        if governor and dependent and governor["infons"]["entityType"] == "modifier" \
                and NEGATION_MODIFIER.search(governor["text"]):
            negated.add(dependent["id"])
    return negated


def case_report_mentions(passage: dict, entity_types: tuple[str, ...] = ("finding",)) -> list[tuple[int, int, bool]]:
    """(start, end, gold negated) of the distinct spans annotated with one of `entity_types`, offsets within
    the passage, sorted. The corpus repeats annotations (one copy per relation); a span counts once, negated
    when any copy is. Only findings by default: the scheme's `modifies` relations go from a modifier to a
    finding (1,009 of 1,009), so a condition ("no history of endometriosis") cannot be gold negated."""
    negated = case_report_negated(passage)
    mentions: dict[tuple[int, int], bool] = {}
    for annotation in passage["annotations"]:
        if annotation["infons"]["entityType"] not in entity_types:
            continue
        start = annotation["locations"]["offset"] - passage["offset"]
        span = (start, start + annotation["locations"]["length"])
        mentions[span] = mentions.get(span, False) or annotation["id"] in negated
    return [(s, e, g) for (s, e), g in sorted(mentions.items())]


@lru_cache(maxsize=1)
def case_report_corpus(path: Path) -> dict:
    """The parsed corpus, read once per process (the benches score several parts of it)."""
    return json.loads(path.read_text(encoding="utf-8"))


def case_report_negation_documents(data_dir: Path, part: str,
                                   entity_types: tuple[str, ...] = ("finding",)) -> list[NegationDocument]:
    corpus = case_report_corpus(data_dir / CASE_REPORT_FILE)
    wanted = set(case_report_split([d["id"] for d in corpus["documents"]])[part])
    documents = []
    for document in corpus["documents"]:
        if document["id"] not in wanted:
            continue
        for passage in document["passages"]:
            mentions = case_report_mentions(passage, entity_types)
            documents.append(NegationDocument(document["id"], passage["text"], [(s, e) for s, e, _ in mentions],
                                              [g for _, _, g in mentions]))
    return documents


def negation_score(documents: list[NegationDocument], predicted: list[list[bool]]) -> dict:
    """P/R/F1 of `absent` over every span of `documents`; `predicted` holds one list of flags per document."""
    tp = found = gold = 0
    for document, flags in zip(documents, predicted, strict=True):
        for is_gold, is_predicted in zip(document.negated, flags, strict=True):
            tp += is_gold and is_predicted
            found += is_predicted
            gold += is_gold
    return prf(tp, found, gold)
