"""Entity-level scores: strict (exact character span and type), lenient (overlap, same type), and counts
of the two failure signatures named in the paper: span mismatch and entity confusion."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from ner_engine.types import Span


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float
    true_positives: int
    predicted: int
    gold: int


def _scores(tp: int, predicted: int, gold: int) -> Scores:
    precision = tp / predicted if predicted else 0.0
    recall = tp / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(round(precision, 4), round(recall, 4), round(f1, 4), tp, predicted, gold)


@dataclass
class EvaluationReport:
    strict: dict[str, Scores] = field(default_factory=dict)    # per type plus "micro"
    lenient: dict[str, Scores] = field(default_factory=dict)
    span_mismatch: int = 0      # right type, overlapping, wrong boundaries
    entity_confusion: int = 0   # right span, wrong type
    documents: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _overlap(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def spans_evaluate(gold: Sequence[Iterable[Span]], predicted: Sequence[Iterable[Span]], *,
                   merge: Mapping[str, str] | None = None) -> EvaluationReport:
    """Score predictions against gold, document by document. `merge` folds types together first
    (e.g. SYMPTOM into DISEASE for a corpus whose one label covers both)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold documents but {len(predicted)} predicted")
    merge = dict(merge or {})

    def fold(spans: Iterable[Span]) -> set[Span]:
        return {Span(s.start, s.end, merge.get(s.type, s.type)) for s in spans}

    strict_tp: Counter = Counter()
    lenient_tp_pred: Counter = Counter()
    lenient_tp_gold: Counter = Counter()
    n_pred: Counter = Counter()
    n_gold: Counter = Counter()
    report = EvaluationReport(documents=len(gold))
    for gold_spans, predicted_spans in zip(gold, predicted):
        gold_set, pred_set = fold(gold_spans), fold(predicted_spans)
        n_gold.update(s.type for s in gold_set)
        n_pred.update(s.type for s in pred_set)
        strict_tp.update(s.type for s in gold_set & pred_set)
        lenient_tp_pred.update(p.type for p in pred_set
                               if any(_overlap(p, g) and p.type == g.type for g in gold_set))
        lenient_tp_gold.update(g.type for g in gold_set
                               if any(_overlap(p, g) and p.type == g.type for p in pred_set))
        gold_boundaries = {(g.start, g.end): g.type for g in gold_set}
        for p in pred_set - gold_set:
            if (p.start, p.end) in gold_boundaries:
                report.entity_confusion += 1
            elif any(_overlap(p, g) and p.type == g.type for g in gold_set):
                report.span_mismatch += 1
    for entity_type in sorted(set(n_gold) | set(n_pred)):
        report.strict[entity_type] = _scores(strict_tp[entity_type], n_pred[entity_type], n_gold[entity_type])
        report.lenient[entity_type] = _lenient(lenient_tp_pred[entity_type], lenient_tp_gold[entity_type],
                                               n_pred[entity_type], n_gold[entity_type])
    report.strict["micro"] = _scores(sum(strict_tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    report.lenient["micro"] = _lenient(sum(lenient_tp_pred.values()), sum(lenient_tp_gold.values()),
                                       sum(n_pred.values()), sum(n_gold.values()))
    return report


def _lenient(tp_pred: int, tp_gold: int, predicted: int, gold: int) -> Scores:
    # Overlap matching is not one-to-one, so precision counts matched predictions, recall matched gold.
    precision = tp_pred / predicted if predicted else 0.0
    recall = tp_gold / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(round(precision, 4), round(recall, 4), round(f1, 4), tp_gold, predicted, gold)
