"""The gold that the negation numbers are scored against (bench/_negation_gold.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _negation_gold import (NegationDocument, case_report_mentions, case_report_negation_documents,  # noqa: E402
                            case_report_split, negation_score)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _annotation(identifier: str, entity_type: str, start: int, text: str) -> dict:
    return {"id": identifier, "infons": {"entityType": entity_type}, "text": text,
            "locations": {"offset": 100 + start, "length": len(text)}}


def _modifies(governor: str, dependent: str) -> dict:
    return {"infons": {"type": "modifies"},
            "nodes": [{"refid": governor, "role": "Governor"}, {"refid": dependent, "role": "Dependent"}]}


def test_case_report_gold_negated_is_a_finding_a_negation_modifier_modifies() -> None:
    text = "No fever, cough normal; rash. History of asthma."
    passage = {"offset": 100, "text": text, "annotations": [
        _annotation("m1", "modifier", 0, "No"), _annotation("f1", "finding", 3, "fever"),
        _annotation("f1-copy", "finding", 3, "fever"),               # the corpus repeats annotations per relation
        _annotation("m2", "modifier", 16, "normal"), _annotation("f2", "finding", 10, "cough"),
        _annotation("f3", "finding", 24, "rash"), _annotation("c1", "condition", 41, "asthma")],
        "relations": [_modifies("m1", "f1-copy"), _modifies("m2", "f2")]}
    assert case_report_mentions(passage) == [(3, 8, True), (10, 15, False), (24, 28, False)]
    # Conditions only when asked for: no modifier in the scheme ever modifies one.
    assert (41, 47, False) in case_report_mentions(passage, ("finding", "condition"))


def test_negation_score_counts_spans_across_documents() -> None:
    documents = [NegationDocument("a", "x", [(0, 1), (2, 3)], [True, False]),
                 NegationDocument("b", "y", [(0, 1)], [True])]
    assert negation_score(documents, [[True, True], [False]]) == {
        "precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 1, "predicted": 2, "gold": 2}
    with pytest.raises(ValueError):
        negation_score(documents, [[True], [False]])


def test_case_report_split_is_fixed_and_disjoint() -> None:
    ids = [f"doc{i:02d}" for i in range(53)]
    split = case_report_split(list(reversed(ids)))
    assert (len(split["dev"]), len(split["test"])) == (27, 26)
    assert not set(split["dev"]) & set(split["test"]) and split["dev"][0] == "doc00"


@pytest.mark.skipif(not (DATA / "CaseReportCorpus").is_dir(), reason="../shared/data/CaseReportCorpus is absent")
def test_case_report_corpus_gold_counts() -> None:
    documents = case_report_negation_documents(DATA, "all")
    assert len(documents) == 53
    assert sum(map(sum, (d.negated for d in documents))) == 264  # distinct negated findings
    assert all(d.text[s:e].strip() for d in documents for s, e in d.spans)
