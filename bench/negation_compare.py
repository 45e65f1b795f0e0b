"""Negation (`absent`) on held-out data: our ConText rules against medspaCy's ConText and a learned classifier.

    python bench/negation_compare.py [--data-dir ../shared/data] [--medspacy-python PYTHON]
                                     [--out bench/results/negation_compare.json]

Same gold spans and scoring as `context_eval.py` (MACCROBAT2020 test split, CaseReportCorpus findings, dev and
test halves), one run, three systems:

* `rules`: `ner_engine.context.assertion.AssertionDetector`, what the app runs;
* `medspacy`: medspaCy 1.3.1's ConText with its default rules, sentences from its PyRuSH splitter, the gold spans
  given as its targets. medspaCy pins spaCy 3.7, which this project does not install, so it runs in its own
  virtualenv: `python3.11 -m venv /tmp/msvenv && /tmp/msvenv/bin/pip install medspacy==1.3.1`, then pass
  `--medspacy-python /tmp/msvenv/bin/python` (this script re-runs itself there for that system);
* `learned`: logistic regression (scikit-learn) that re-decides `absent` for every span whose sentence holds a
  negation cue, from features of the nearest cue before and after it (cue phrase, word distance, punctuation,
  words in between, mentions in between, terminators) and the rules' own verdict; trained on the MACCROBAT
  train split, alone and with the CaseReportCorpus dev half; C and the probability threshold chosen on the
  MACCROBAT dev split.

Seconds per system (the three evaluated sets, one process) are printed as a ratio to the rules'.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _negation_gold import (NegationDocument, case_report_negation_documents,  # noqa: E402
                            maccrobat_negation_documents, negation_score)

from ner_engine.context.assertion import WORD, AssertionDetector, WindowWords, sentence_bounds  # noqa: E402
from ner_engine.datasets import DEFAULT_DATA_DIR  # noqa: E402

EVALUATED = ("maccrobat_test", "case_report_test", "case_report_dev")
Predictor = Callable[[list[NegationDocument]], list[list[bool]]]


def documents_load(data_dir: Path) -> dict[str, list[NegationDocument]]:
    return {"maccrobat_train": maccrobat_negation_documents(data_dir, "train"),
            "maccrobat_dev": maccrobat_negation_documents(data_dir, "dev"),
            "maccrobat_test": maccrobat_negation_documents(data_dir, "test"),
            "case_report_dev": case_report_negation_documents(data_dir, "dev"),
            "case_report_test": case_report_negation_documents(data_dir, "test")}


def rules_predict(detector: AssertionDetector) -> Predictor:
    return lambda documents: [[a == "absent" for a in detector.detect(d.text, d.spans)] for d in documents]


# ---------------------------------------------------------------- medspaCy
def medspacy_predict() -> Predictor:
    import medspacy
    from spacy.tokens import Span

    nlp = medspacy.load(medspacy_enable=["medspacy_pyrush"])
    context = nlp.add_pipe("medspacy_context", config={"input_span_type": "group"})

    def predict(documents: list[NegationDocument]) -> list[list[bool]]:
        flags = []
        for document in documents:
            doc = nlp.make_doc(document.text)
            for name, component in nlp.pipeline:
                if name != "medspacy_context":
                    doc = component(doc)
            targets = [doc.char_span(s, e, label="TARGET", alignment_mode="expand") for s, e in document.spans]
            doc.spans["medspacy_spans"] = [t if t is not None else Span(doc, 0, 0, "TARGET") for t in targets]
            doc = context(doc)
            flags.append([bool(t._.is_negated) for t in doc.spans["medspacy_spans"]])
        return flags

    return predict


# ---------------------------------------------------------------- learned
def _bucket(n: int) -> str:
    return str(n) if n < 3 else "3-4" if n < 5 else "5-8" if n < 9 else "9+"


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower())


def cue_features(detector: AssertionDetector, document: NegationDocument) -> list[list[str] | None]:
    """Per span: None when its sentence holds no negation cue (the rules' `present` stands), else features of
    the nearest cue before it that reads forward and the nearest after it that reads backward."""
    text, spans = document.text, document.spans
    cues = detector.cues_find(text)
    negations = [c for c in cues if c.category == "absent"]
    terminators = [c for c in cues if c.category == "terminate"]
    bounds = sentence_bounds(text)
    starts = [b[0] for b in bounds]
    words = WindowWords(text, spans)
    verdicts = detector.detect(text, spans)
    rows: list[list[str] | None] = []
    for (start, end), verdict in zip(spans, verdicts):
        sentence = bounds[max(bisect_right(starts, start) - 1, 0)]
        inside = [c for c in negations if c.start >= sentence[0] and c.end <= sentence[1]]
        if not inside:
            rows.append(None)
            continue
        mention = WORD.findall(text[start:end])
        features = ["rule=" + verdict, "head=" + (mention[-1].lower() if mention else "")]
        features += ["over=" + _normal(text[c.start:c.end]) for c in inside if c.start < end and start < c.end]
        before = [c for c in inside if c.end <= start and c.direction in ("forward", "forward-outside", "both")]
        after = [c for c in inside if c.start >= end and c.direction in ("backward", "both")]
        for side, cue in (("f", before[-1] if before else None), ("b", after[0] if after else None)):
            if cue is None:
                continue
            gap = (cue.end, start) if side == "f" else (end, cue.start)
            between = text[gap[0]:gap[1]]
            gap_words = [w.lower() for w in WORD.findall(between)]
            distance = _bucket(words.count(*gap))
            phrase = _normal(text[cue.start:cue.end])
            features += [f"{side}cue={phrase}", f"{side}dist={distance}", f"{side}cue_dist={phrase}|{distance}",
                         f"{side}mentions={_bucket(sum(gap[0] <= a and b <= gap[1] for a, b in spans))}"]
            features += [f"{side}punct={p}" for p in ",;:()" if p in between]
            features += [f"{side}word={w}" for w in set(gap_words)]
            if gap_words:
                features += [f"{side}first={gap_words[0]}", f"{side}last={gap_words[-1]}"]
            if any(gap[0] <= t.start and t.end <= gap[1] for t in terminators):
                features.append(f"{side}terminator")
        window = WORD.findall(text[max(sentence[0], start - 30):start])
        following = WORD.findall(text[end:min(sentence[1], end + 30)])
        if window:
            features.append("previous=" + window[-1].lower())
        if following:
            features.append("next=" + following[0].lower())
        rows.append(features)
    return rows


def learned_fit(detector: AssertionDetector, train: list[NegationDocument], select: list[NegationDocument]):
    """Fit on `train`, choose C and threshold by F1 on `select`; returns (predictor, chosen settings)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    rows, labels = [], []
    for document in train:
        for features, gold in zip(cue_features(detector, document), document.negated):
            if features is not None:
                rows.append(dict.fromkeys(features, 1))
                labels.append(gold)
    vectoriser = DictVectorizer()
    matrix = vectoriser.fit_transform(rows)

    def predictor(model, threshold: float) -> Predictor:
        def predict(documents: list[NegationDocument]) -> list[list[bool]]:
            flags = []
            for document in documents:
                per_span = cue_features(detector, document)
                indices = [i for i, features in enumerate(per_span) if features is not None]
                probabilities = (model.predict_proba(vectoriser.transform(
                    [dict.fromkeys(per_span[i], 1) for i in indices]))[:, 1] if indices else [])
                by_index = dict(zip(indices, probabilities))
                flags.append([bool(by_index.get(i, 0.0) > threshold) for i in range(len(per_span))])
            return flags
        return predict

    best = None
    for c in (0.1, 0.3, 1.0, 3.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(matrix, labels)
        for threshold in (0.4, 0.5, 0.6):
            f1 = negation_score(select, predictor(model, threshold)(select))["f1"]
            if best is None or f1 > best[0]:
                best = (f1, c, threshold, model)
    f1, c, threshold, model = best
    return predictor(model, threshold), {"C": c, "threshold": threshold, "selection_f1": f1,
                                         "training_spans_with_cue": len(labels)}


# ---------------------------------------------------------------- run
def system_run(predict: Predictor, sets: dict[str, list[NegationDocument]]) -> dict:
    result, seconds = {}, 0.0
    for name in EVALUATED:
        started = time.perf_counter()
        flags = predict(sets[name])
        seconds += time.perf_counter() - started
        result[name] = negation_score(sets[name], flags)
    result["seconds"] = round(seconds, 3)
    return result


def medspacy_run(python: str, data_dir: Path) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        # PyRuSH logs every sentence decision at DEBUG through loguru.
        subprocess.run([python, __file__, "--data-dir", str(data_dir), "--only-medspacy", "--out", handle.name],
                       check=True, env={**os.environ, "LOGURU_LEVEL": "WARNING"})
        return json.loads(Path(handle.name).read_text())["medspacy"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "negation_compare.json")
    parser.add_argument("--medspacy-python", default=None,
                        help="a Python with medspacy==1.3.1 installed (default: this one, if it has medspaCy)")
    parser.add_argument("--only-medspacy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sets = documents_load(args.data_dir)
    if args.only_medspacy:
        args.out.write_text(json.dumps({"medspacy": system_run(medspacy_predict(), sets)}))
        return 0

    detector = AssertionDetector()
    results: dict = {"rules": system_run(rules_predict(detector), sets)}
    print("rules", json.dumps(results["rules"]))
    if args.medspacy_python:
        results["medspacy"] = medspacy_run(args.medspacy_python, args.data_dir)
    else:
        try:
            results["medspacy"] = system_run(medspacy_predict(), sets)
        except ImportError:
            print("medspacy: not installed here; pass --medspacy-python (see the docstring)")
    for name, train in (("learned_maccrobat", sets["maccrobat_train"]),
                        ("learned_maccrobat_and_case_report_dev", sets["maccrobat_train"] + sets["case_report_dev"])):
        predict, chosen = learned_fit(detector, train, sets["maccrobat_dev"])
        results[name] = {**system_run(predict, sets), "chosen": chosen}
    base = results["rules"]["seconds"]
    for name, result in results.items():
        if name != "rules":
            result["seconds_vs_rules"] = round(result["seconds"] / base, 2) if base else None
        print(name, " ".join(f"{s}={result[s]['f1']}" for s in EVALUATED), f"seconds={result['seconds']}",
              f"x{result.get('seconds_vs_rules', 1.0)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
