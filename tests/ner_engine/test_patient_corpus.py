"""The patient-message NER corpus (bench/data/patient_ner/) and its guideline (ner_engine/ANNOTATION.md).

Checks the committed JSON lines against the markup source, span offsets and types, the dev/test split rule,
and every guideline example against the corpus (a `✓` example must be a message with exactly its spans, a `✗`
example's wrong spans must be absent)."""
from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from ner_engine.datasets import dataset_load
from ner_engine.types import ENTITY_TYPES

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "bench" / "data" / "patient_ner"

_spec = importlib.util.spec_from_file_location("patient_ner_check", ROOT / "bench" / "patient_ner_check.py")
check = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("patient_ner_check", check)  # dataclasses look their module up while the file executes
_spec.loader.exec_module(check)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return check.jsonl_read(CORPUS / "messages.jsonl")


@pytest.fixture(scope="module")
def source() -> list:
    return check.source_read()


def test_jsonl_files_are_the_build_of_the_source(rows, source):
    assert rows == [m.to_json() for m in source]
    for split in ("dev", "test"):
        assert check.jsonl_read(CORPUS / f"{split}.jsonl") == [r for r in rows if r["split"] == split]


def test_size_and_categories(rows):
    assert len(rows) >= 650
    categories = {r["category"] for r in rows}
    assert categories == set(check.CATEGORIES)
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["text"].lower() for r in rows}) == len(rows)


def test_offsets_types_and_word_boundaries(rows):
    for row in rows:
        text = row["text"]
        assert set(row["types"]) == set(check.TYPES) and set(check.TYPES) <= set(ENTITY_TYPES)
        previous_end = 0
        for span in sorted(row["spans"], key=lambda s: (s["start"], s["end"])):
            start, end = span["start"], span["end"]
            assert 0 <= start < end <= len(text), row["id"]
            assert span["type"] in check.TYPES, row["id"]
            mention = text[start:end]
            assert mention == mention.strip() and mention[-1] not in ".,;:!?", (row["id"], mention)
            assert start == 0 or not text[start - 1].isalnum(), (row["id"], mention)
            assert end == len(text) or not text[end].isalnum(), (row["id"], mention)
            assert start >= previous_end, (row["id"], "overlap", mention)
            previous_end = end


def test_split_rule_holds_and_halves_are_balanced(rows):
    for row in rows:
        digit = int(hashlib.sha1(row["id"].encode()).hexdigest()[-1], 16)
        assert row["split"] == ("dev" if digit % 2 == 0 else "test"), row["id"]
    dev = sum(r["split"] == "dev" for r in rows)
    assert 0.4 < dev / len(rows) < 0.6
    for category in check.CATEGORIES:
        halves = {r["split"] for r in rows if r["category"] == category}
        assert halves == {"dev", "test"}, category


def test_the_project_reader_reads_the_halves_with_the_same_spans(rows):
    for split in ("dev", "test"):
        documents = dataset_load(f"jsonl:{CORPUS / f'{split}.jsonl'}", "test")
        expected = [r for r in rows if r["split"] == split]
        assert [d.id for d in documents] == [r["id"] for r in expected]
        for document, row in zip(documents, expected):
            assert [(s.start, s.end, s.type) for s in document.spans] == sorted(
                (s["start"], s["end"], s["type"]) for s in row["spans"])
            assert set(document.types) == set(check.TYPES)


def test_source_has_no_problems(source):
    assert check.corpus_problems(source) == []


EXAMPLES = check.guideline_examples()


def test_guideline_has_examples_for_every_rule():
    rules = {e.rule for e in EXAMPLES}
    for rule in ("G1", "G2", "G3", "G4", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "D1", "D2", "R1", "R2", "R3",
                 "R4", "N1", "N2", "N3", "T1", "T2", "V1", "V2", "V3"):
        assert rule in rules, rule
    assert sum(not e.correct for e in EXAMPLES) >= 20


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.rule}-L{e.line}-{'ok' if e.correct else 'wrong'}" for e in EXAMPLES])
def test_guideline_example_is_in_the_corpus(example, source):
    assert check.guideline_problems(source, [example]) == []


def test_markup_parse_gives_exact_offsets():
    text, spans = check.markup_parse("I have [a bad|SEVERITY] [headache|SYMPTOM] [since Tuesday|DURATION]")
    assert text == "I have a bad headache since Tuesday"
    assert [text[s:e] for s, e, _ in spans] == ["a bad", "headache", "since Tuesday"]
    with pytest.raises(ValueError):
        check.markup_parse("a [cough|COUGH]")
    with pytest.raises(ValueError):
        check.markup_parse("a [cough|SYMPTOM")
    with pytest.raises(ValueError):
        check.markup_parse("a [ cough|SYMPTOM]")


def test_problems_are_detected():
    bad = check.Message("pn-x-001", "site", "my knee hurts", [(3, 6, "SYMPTOM"), (5, 13, "SYMPTOM")])
    problems = check.message_problems(bad)
    assert any("cuts a word" in p for p in problems) and any("overlaps" in p for p in problems)
    corpus = [check.Message("pn-x-001", "site", "my knee hurts", [(3, 13, "SYMPTOM")])]
    wrong = check.GuidelineExample(False, "S1", "my knee hurts", ((3, 13, "SYMPTOM"),), 1)
    assert check.guideline_problems(corpus, [wrong])
    right = check.GuidelineExample(True, "S1", "my knee hurts", ((8, 13, "SYMPTOM"),), 1)
    assert check.guideline_problems(corpus, [right])
