"""The check sets of ner_engine.context (bench/_check_sets.py, data in bench/data/): well-formed, or the evaluation
would silently score something else."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ner_engine.context.assertion import ASSERTIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _check_sets import assertion_check_load, coding_check_load, lay_check_rows  # noqa: E402


def test_patient_check_set_is_well_formed():
    """bench/context_eval.py scores `assertion_check.tsv` (patient-phrased messages): every row must name a
    known assertion and a whole word of its message."""
    cases = assertion_check_load()
    assert len(cases) >= 100
    for expected, message, (start, end) in cases:
        assert expected in ASSERTIONS
        assert message[start:end].strip() and not message[end:end + 1].isalnum(), message


def test_check_set_rejects_a_mention_missing_from_its_message(tmp_path):
    path = tmp_path / "check.tsv"
    path.write_text("absent\tcough\tI have no coughing fits\n", encoding="utf-8")
    with pytest.raises(ValueError, match="check.tsv:1"):
        assertion_check_load(path)


def test_coding_check_set_rows_point_at_their_mention(tmp_path):
    for row in coding_check_load():
        assert row["message"][row["start"]:row["end"]].lower() == row["mention"].lower()
    path = tmp_path / "coding.tsv"
    path.write_text("HPO:HP:0002315\tSYMPTOM\theadache\tmy head hurts\tHeadache\n", encoding="utf-8")
    with pytest.raises(ValueError, match="coding.tsv:1"):
        coding_check_load(path)


def test_lay_check_rows_have_five_fields():
    rows = lay_check_rows()
    assert len(rows) >= 140 and all(len(row) == 5 for row in rows)
