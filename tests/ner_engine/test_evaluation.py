"""Entity-level evaluation: strict and lenient scores, failure-signature counts, type merging."""
from __future__ import annotations

import json

import pytest

from ner_engine.evaluation import spans_evaluate
from ner_engine.types import Span

GOLD = [
    [Span(0, 5, "SYMPTOM"), Span(10, 17, "DRUG"), Span(20, 30, "DISEASE")],
    [Span(0, 4, "DRUG")],
]
PREDICTED = [
    [Span(0, 5, "SYMPTOM"),      # exact: strict true positive
     Span(10, 17, "SYMPTOM"),    # right span, wrong type: entity confusion
     Span(20, 25, "DISEASE"),    # right type, wrong boundaries: span mismatch (lenient match)
     Span(40, 45, "DRUG")],      # nothing there
    [],                          # the drug is missed
]


def scores(report, kind, entity_type):
    s = getattr(report, kind)[entity_type]
    return (s.precision, s.recall, s.f1, s.true_positives, s.predicted, s.gold)


def test_strict_scores_per_type_and_micro():
    report = spans_evaluate(GOLD, PREDICTED)
    assert report.documents == 2
    assert scores(report, "strict", "SYMPTOM") == (0.5, 1.0, 0.6667, 1, 2, 1)
    assert scores(report, "strict", "DRUG") == (0.0, 0.0, 0.0, 0, 1, 2)
    assert scores(report, "strict", "DISEASE") == (0.0, 0.0, 0.0, 0, 1, 1)
    assert scores(report, "strict", "micro") == (0.25, 0.25, 0.25, 1, 4, 4)
    assert set(report.strict) == {"SYMPTOM", "DRUG", "DISEASE", "micro"}


def test_lenient_scores_count_overlaps_of_the_same_type():
    report = spans_evaluate(GOLD, PREDICTED)
    assert scores(report, "lenient", "DISEASE") == (1.0, 1.0, 1.0, 1, 1, 1)
    assert scores(report, "lenient", "SYMPTOM") == (0.5, 1.0, 0.6667, 1, 2, 1)
    assert scores(report, "lenient", "DRUG") == (0.0, 0.0, 0.0, 0, 1, 2)
    assert scores(report, "lenient", "micro") == (0.5, 0.5, 0.5, 2, 4, 4)


def test_lenient_is_not_one_to_one():
    # One long prediction covering two gold mentions: one matched prediction, two matched gold spans.
    report = spans_evaluate([[Span(0, 4, "SYMPTOM"), Span(5, 9, "SYMPTOM")]], [[Span(0, 9, "SYMPTOM")]])
    assert scores(report, "lenient", "SYMPTOM") == (1.0, 1.0, 1.0, 2, 1, 2)
    assert scores(report, "strict", "SYMPTOM") == (0.0, 0.0, 0.0, 0, 1, 2)
    assert report.span_mismatch == 1 and report.entity_confusion == 0


def test_failure_signature_counts():
    report = spans_evaluate(GOLD, PREDICTED)
    assert report.span_mismatch == 1
    assert report.entity_confusion == 1
    # Overlap with a gold span of another type is neither: it is a plain false positive.
    other = spans_evaluate([[Span(0, 10, "DRUG")]], [[Span(0, 5, "SYMPTOM")]])
    assert (other.span_mismatch, other.entity_confusion) == (0, 0)


def test_merge_folds_types_before_scoring():
    gold = [[Span(0, 5, "DISEASE"), Span(8, 12, "DRUG")]]
    predicted = [[Span(0, 5, "SYMPTOM"), Span(8, 12, "DRUG")]]
    plain = spans_evaluate(gold, predicted)
    assert plain.strict["micro"].f1 == 0.5
    assert plain.entity_confusion == 1
    merged = spans_evaluate(gold, predicted, merge={"SYMPTOM": "DISEASE"})
    assert merged.strict["micro"].f1 == 1.0
    assert merged.entity_confusion == 0
    assert set(merged.strict) == {"DISEASE", "DRUG", "micro"}  # SYMPTOM no longer appears on its own


def test_duplicates_count_once_and_perfect_predictions_score_one():
    report = spans_evaluate(GOLD, [GOLD[0] + GOLD[0][:1], list(GOLD[1])])
    assert scores(report, "strict", "micro") == (1.0, 1.0, 1.0, 4, 4, 4)
    assert scores(report, "lenient", "micro") == (1.0, 1.0, 1.0, 4, 4, 4)


def test_empty_and_mismatched_inputs():
    empty = spans_evaluate([[], []], [[], []])
    assert scores(empty, "strict", "micro") == (0.0, 0.0, 0.0, 0, 0, 0)
    assert set(empty.strict) == {"micro"}
    with pytest.raises(ValueError, match="2 gold documents but 1 predicted"):
        spans_evaluate([[], []], [[]])


def test_report_serialises_to_json():
    data = json.loads(json.dumps(spans_evaluate(GOLD, PREDICTED).to_dict()))
    assert data["strict"]["micro"]["f1"] == 0.25
    assert data["lenient"]["DISEASE"]["recall"] == 1.0
    assert data["span_mismatch"] == 1 and data["entity_confusion"] == 1 and data["documents"] == 2
