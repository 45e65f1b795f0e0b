"""Red-flag findings in lay words: does the interview hear them in a patient's first message?

    .venv/bin/python bench/finding_recall.py [--split dev|test|all] [--output bench/results/finding_recall.json]
        [--show-misses]  (dev only: the rows missed, to work on)

Check set `bench/data/finding_phrases.tsv` (columns finding_id, text, present; written by hand for the project,
independently of the knowledge base's synonyms; split by the rule of the other check sets: rows in file order, even
positions dev, odd positions test). Each text goes through the app's own path as a first message: the NER model
(`consult.extraction.entities_extract`) and the interview engine the worker runs (`consult.interview.
triage_engine_get`); the finding counts as heard when the decision's record lists it as present or possible.

Reported per split: recall over the rows with present = 1, and the share of present = 0 rows (a negated, past,
someone else's or a look-alike finding) wrongly heard as the finding.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_ENV", "test")

import django  # noqa: E402

django.setup()

from consult import extraction, interview  # noqa: E402
from consult.triage import TriageInput, Turn  # noqa: E402

CHECK_SET = ROOT / "bench" / "data" / "finding_phrases.tsv"


def check_set_read(path: Path = CHECK_SET) -> list[dict]:
    """Rows {"finding_id", "text", "present" (bool), "split"}; raises ValueError for a row that names a finding
    the knowledge base lacks or a present value other than 0/1."""
    findings = interview.triage_engine_get().knowledge.findings
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    for number, row in enumerate(rows):
        if row["finding_id"] not in findings or row["present"] not in ("0", "1"):
            raise ValueError(f"{path}: row {number + 2}: unknown finding or present value: {row}")
        row["present"] = row["present"] == "1"
        row["split"] = "dev" if number % 2 == 0 else "test"
    return rows


def heard(text: str) -> set[str]:
    """The finding ids the interview reads as present or possible in `text` as a first message."""
    entities = extraction.entities_extract(text=text).entities
    decision = interview.triage_engine_get().decide(TriageInput(turns=(Turn(text=text, entities=tuple(entities)),)))
    return {f["id"] for f in decision.record["findings"] if f["assertion"] in ("present", "possible")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--show-misses", action="store_true", help="print the dev rows missed or wrongly heard")
    parser.add_argument("--similarity-threshold", type=float, default=None,
                        help="TriageSettings.similarity_threshold for this run (a negative value: synonyms only)")
    args = parser.parse_args()
    engine = interview.triage_engine_get()
    if args.similarity_threshold is not None and engine.similarity is not None:
        if args.similarity_threshold < 0:
            engine.similarity = None
        else:
            engine.similarity.threshold = args.similarity_threshold
    rows = [r for r in check_set_read() if args.split == "all" or r["split"] == args.split]
    positives = [r for r in rows if r["present"]]
    negatives = [r for r in rows if not r["present"]]
    missed = [r for r in positives if r["finding_id"] not in heard(r["text"])]
    wrongly = [r for r in negatives if r["finding_id"] in heard(r["text"])]
    summary = {
        "split": args.split, "rows": len(rows), "knowledge_base": engine.knowledge.version,
        "similarity_threshold": engine.similarity.threshold if engine.similarity is not None else None,
        "recall": round(1 - len(missed) / len(positives), 4) if positives else None,
        "positives": len(positives), "missed": len(missed),
        "wrongly_heard": round(len(wrongly) / len(negatives), 4) if negatives else None,
        "negatives": len(negatives), "wrongly_heard_rows": len(wrongly),
    }
    print(json.dumps(summary, indent=2))
    if args.show_misses and args.split == "dev":
        for r in missed:
            print(f"MISSED  {r['finding_id']}\t{r['text']}")
        for r in wrongly:
            print(f"WRONG   {r['finding_id']}\t{r['text']}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
