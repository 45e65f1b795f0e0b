"""`python -m ner_engine predict|evaluate|datasets` with the tiny model artifact (conftest `trained`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ner_engine.cli import main
from ner_engine.datasets import REGISTRY, documents_read_jsonl, documents_write_jsonl
from ner_engine.types import Document

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "ner_engine", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_predict_subprocess(trained, tmp_path):
    rows = [{"id": "a", "text": "I have a bad headache since taking ibuprofen.", "keep": [1, 2]},
            {"id": "b", "text": ""},
            {"id": "c", "text": "Fièvre — He takes insulin every morning."}]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    target = tmp_path / "out.jsonl"
    result = run_module("predict", "--model", str(trained["best"]), "--input", str(source), "--output", str(target),
                        "--device", "cpu", "--batch-size", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in out] == ["a", "b", "c"]
    assert out[0]["keep"] == [1, 2]  # the input fields are passed through
    assert [(e["text"], e["type"]) for e in out[0]["entities"]] == [("headache", "SYMPTOM"), ("ibuprofen", "DRUG")]
    assert out[1]["entities"] == []
    for row in out:
        for entity in row["entities"]:
            assert {"start", "end", "type", "text", "score"} <= set(entity)  # plus clinical-context attributes
            assert row["text"][entity["start"]:entity["end"]] == entity["text"]


def test_predict_subprocess_bad_line_exits_2(tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text('{"text": "fever"}\n{"txt": "cough"}\n', encoding="utf-8")
    target = tmp_path / "out.jsonl"
    # The input is checked before any model is loaded: a missing model folder does not hide the bad line.
    result = run_module("predict", "--model", str(tmp_path / "no-model"), "--input", str(source),
                        "--output", str(target), "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 2
    assert f'{source}:2: expected a JSON object with a "text" field' in result.stderr
    assert "Traceback" not in result.stderr
    assert not target.exists()  # nothing half-written


@pytest.mark.parametrize("line, message", [
    ("{not json", 'expected a JSON object with a "text" field'),
    ('{"id": 1}', 'expected a JSON object with a "text" field'),
    ('["fever"]', 'expected a JSON object with a "text" field'),
    ('"fever"', 'expected a JSON object with a "text" field'),
    ("null", 'expected a JSON object with a "text" field'),
    ('{"text": 42}', '"text" must be a string'),
    ('{"text": null}', '"text" must be a string'),
])
def test_predict_bad_lines(tmp_path, capsys, line, message):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "fever"}\n\n' + line + "\n", encoding="utf-8")
    code = main(["predict", "--model", str(tmp_path / "no-model"), "--input", str(source),
                 "--output", str(tmp_path / "out.jsonl"), "--device", "cpu"])
    assert code == 2
    assert f"{source}:3: {message}" in capsys.readouterr().err


def test_evaluate_jsonl_writes_a_report(trained, tmp_path, capsys, tiny):
    documents = tiny.documents() + [
        # A document that annotates no type: nothing is asked of it, so it cannot add false positives.
        Document("unannotated", "He takes insulin every morning.", [], ()),
    ]
    corpus = tmp_path / "eval.jsonl"
    documents_write_jsonl(documents, corpus)
    assert documents_read_jsonl(corpus)[-1].types == ()
    report_path = tmp_path / "report.json"
    code = main(["evaluate", "--model", str(trained["best"]), "--dataset", f"jsonl:{corpus}", "--split", "dev",
                 "--json", str(report_path), "--device", "cpu"])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert json.loads(capsys.readouterr().out) == report
    assert (report["dataset"], report["split"], report["model_version"]) == (f"jsonl:{corpus}", "dev", "tiny-test-1")
    assert report["model"] == str(trained["best"])
    assert report["documents"] == len(documents)
    micro = report["strict"]["micro"]
    assert micro["gold"] == sum(len(m) for _, m in tiny.sentences)
    assert (micro["precision"], micro["recall"], micro["f1"]) == (1.0, 1.0, 1.0)
    assert set(report["strict"]) == {"SYMPTOM", "DRUG", "micro"}


def test_evaluate_int8_precision(trained, tmp_path, tiny):
    corpus = tmp_path / "eval.jsonl"
    documents_write_jsonl(tiny.documents(), corpus)
    report_path = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(trained["best"]), "--dataset", f"jsonl:{corpus}", "--precision", "int8",
                 "--device", "cpu", "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["precision"] == "int8"
    # The overfit tiny model keeps its margins through quantisation of its encoder.
    assert report["strict"]["micro"]["f1"] >= 0.9


def test_evaluate_queries_only_the_annotated_types(trained, tmp_path, tiny):
    # The same sentences annotated for drugs only: symptoms are not asked for, so none are "false positives".
    documents = [Document(d.id, d.text, [s for s in d.spans if s.type == "DRUG"], ("DRUG",)) for d in tiny.documents()]
    corpus = tmp_path / "drugs.jsonl"
    documents_write_jsonl(documents, corpus)
    report_path = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(trained["best"]), "--dataset", f"jsonl:{corpus}", "--json",
                 str(report_path), "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    assert set(report["strict"]) == {"DRUG", "micro"}
    assert report["strict"]["micro"]["f1"] == 1.0


def test_datasets_lists_the_registry(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name, spec in REGISTRY.items():
        assert name in out and spec.licence in out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--output", "x.jsonl"])
    assert exit_info.value.code == 2
    assert "--input" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--dataset", "jsonl:x", "--split", "validation"])
    assert exit_info.value.code == 2
