"""Corpus readers on small fixture files written into tmp_path."""
from __future__ import annotations

import logging

import pytest

from ner_engine.readers import brat_document, brat_documents, cadec_documents, conll_documents, pubtator_documents
from ner_engine.types import Span


def mentions(document):
    return [(document.span_text(s), s.type) for s in document.spans]


# --- CoNLL / IOB2 -----------------------------------------------------------------------------------------

def test_conll_iob2_spans_documents_and_docstart(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text(
        "-DOCSTART-\tO\n"
        "\n"
        "Aspirin\tB-Chemical\n"
        "causes\tO\n"
        "severe\tB-Disease\n"
        "gastric\tI-Disease\n"
        "bleeding\tI-Disease\n"
        ".\tO\n"
        "\n"
        "\n"
        "-DOCSTART-\tO\n"
        "Renal\tB-Disease\n"
        "failure\tI-Disease\n",
        encoding="utf-8",
    )
    documents = conll_documents(path, separator="\t", doc_prefix="train-")
    assert [d.id for d in documents] == ["train-0", "train-1"]
    first, second = documents
    assert first.text == "Aspirin causes severe gastric bleeding ."
    assert mentions(first) == [("Aspirin", "Chemical"), ("severe gastric bleeding", "Disease")]
    # An entity that runs to the end of the sequence (no trailing O) is closed too.
    assert second.text == "Renal failure"
    assert mentions(second) == [("Renal failure", "Disease")]


def test_conll_stray_inside_tags_open_new_entities(tmp_path):
    path = tmp_path / "stray.txt"
    path.write_text(
        "the O\n"
        "pain I-DIS\n"          # I- after O: opens an entity
        "in O\n"
        "chest B-DIS\n"
        "ibuprofen I-DRUG\n"    # I- of another type: closes DIS, opens DRUG
        "tablets I-DRUG\n"
        "fever B-DIS\n"         # B- right after an entity of the same type: two entities
        "chills B-DIS\n",
        encoding="utf-8",
    )
    [document] = conll_documents(path, separator=" ")
    assert mentions(document) == [("pain", "DIS"), ("chest", "DIS"), ("ibuprofen tablets", "DRUG"),
                                  ("fever", "DIS"), ("chills", "DIS")]


def test_conll_whitespace_default_separator_keeps_last_column(tmp_path):
    path = tmp_path / "cols.txt"
    path.write_text("Cough NN B-DIS\nstarted VBD O\n\r\n", encoding="utf-8")
    [document] = conll_documents(path)
    assert document.text == "Cough started"
    assert document.spans == [Span(0, 5, "DIS")]


def test_conll_separator_allows_spaces_inside_tokens(tmp_path):
    path = tmp_path / "tab.tsv"
    path.write_text("New York\tB-LOC\nfever\tB-DIS\n", encoding="utf-8")
    [document] = conll_documents(path, separator="\t")
    assert document.text == "New York fever"
    assert mentions(document) == [("New York", "LOC"), ("fever", "DIS")]


@pytest.mark.parametrize("content, message", [
    ("lonely\n", "expected 'token tag'"),
    ("word X-DIS\n", "unknown IOB tag"),
])
def test_conll_malformed_lines_raise(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        conll_documents(path)


# --- brat standoff ----------------------------------------------------------------------------------------

BRAT_TEXT = "Severe chest pain for two days.\nGiven aspirin and heparin.\n"


def write_brat(directory, name, text, ann):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.txt").write_text(text, encoding="utf-8")
    (directory / f"{name}.ann").write_text(ann, encoding="utf-8")
    return directory / f"{name}.txt"


def test_brat_spans_skip_discontinuous_and_non_text_bound_lines(tmp_path, caplog):
    ann = (
        "T1\tSeverity 0 6\tSevere\n"
        "T2\tSign_symptom 7 17\tchest pain\n"
        "T3\tDuration 22 30\ttwo days   \n"           # trailing whitespace after the mention
        "T4\tMedication 38 45;50 57\taspirin heparin\n"  # discontinuous: skipped
        "T5\tMedication 50 57\theparin\n"
        "E1\tSign_symptom:T2\n"
        "R1\tMODIFY Arg1:T1 Arg2:T2\n"
        "A1\tPolarity E1 NEG\n"
        "#1\tAnnotatorNotes T2\tsome note\n"
    )
    txt = write_brat(tmp_path, "100", BRAT_TEXT, ann)
    with caplog.at_level(logging.INFO, logger="ner_engine.readers"):
        document = brat_document(txt)
    assert document.id == "100"
    assert document.text == BRAT_TEXT
    assert mentions(document) == [("Severe", "Severity"), ("chest pain", "Sign_symptom"), ("two days", "Duration"),
                                  ("heparin", "Medication")]
    assert document.spans == sorted(document.spans)
    assert "skipped 1 discontinuous" in caplog.text


def test_brat_offset_mismatch_is_an_error(tmp_path):
    txt = write_brat(tmp_path, "101", BRAT_TEXT, "T1\tSign_symptom 7 17\tchest pin\n")
    with pytest.raises(ValueError, match=r"101\.ann:1: offsets 7-17 give 'chest pain'"):
        brat_document(txt)


def test_brat_malformed_text_bound_line_is_an_error(tmp_path):
    txt = write_brat(tmp_path, "102", BRAT_TEXT, "T1 Sign_symptom 7 17 chest pain\n")
    with pytest.raises(ValueError, match="malformed text-bound annotation"):
        brat_document(txt)


def test_brat_documents_reads_pairs_and_filters_ids(tmp_path):
    write_brat(tmp_path, "2", "fever", "T1\tSign_symptom 0 5\tfever\n")
    write_brat(tmp_path, "1", "cough", "T1\tSign_symptom 0 5\tcough\n")
    (tmp_path / "3.txt").write_text("orphan text without annotations", encoding="utf-8")
    assert [d.id for d in brat_documents(tmp_path)] == ["1", "2"]
    assert [d.id for d in brat_documents(tmp_path, ids=["2", "3"])] == ["2"]


def test_cadec_layout_text_and_original_folders(tmp_path):
    (tmp_path / "text").mkdir()
    (tmp_path / "original").mkdir()
    (tmp_path / "text" / "LIPITOR.1.txt").write_text("Lipitor gave me muscle aches.", encoding="utf-8")
    (tmp_path / "original" / "LIPITOR.1.ann").write_text(
        "T1\tDrug 0 7\tLipitor\nT2\tADR 16 28\tmuscle aches\n#1\tAnnotatorNotes T2\tmyalgia\n", encoding="utf-8")
    (tmp_path / "text" / "LIPITOR.2.txt").write_text("no annotation file for me", encoding="utf-8")
    [document] = cadec_documents(tmp_path)
    assert document.id == "LIPITOR.1"
    assert mentions(document) == [("Lipitor", "Drug"), ("muscle aches", "ADR")]


# --- PubTator ---------------------------------------------------------------------------------------------

PUBTATOR = (
    "111|t|Aspirin induced asthma.\n"
    "111|a|Patients with asthma received aspirin.\n"
    "111\t0\t7\tAspirin\tChemical\tD001241\n"
    "111\t16\t22\tasthma\tDisease\tD001249\n"
    "111\t38\t44\tasthma\tDisease\tD001249\n"
    "111\t54\t61\taspirin\tChemical\tD001241\n"
    "111\tCID\tD001241\tD001249\n"
    "\n"
    "222|t|Title only about hepatitis\n"
    "222\t17\t26\thepatitis\tDisease\tD006505\n"
)


def test_pubtator_title_abstract_offsets_and_relations_ignored(tmp_path):
    path = tmp_path / "corpus.pubtator"
    path.write_text(PUBTATOR, encoding="utf-8")
    first, second = pubtator_documents(path)
    assert first.id == "111"
    assert first.text == "Aspirin induced asthma. Patients with asthma received aspirin."
    assert mentions(first) == [("Aspirin", "Chemical"), ("asthma", "Disease"), ("asthma", "Disease"),
                               ("aspirin", "Chemical")]
    assert first.spans[2].start > len("Aspirin induced asthma.")  # abstract offsets continue after the title
    assert second.id == "222"
    assert second.text == "Title only about hepatitis"
    assert mentions(second) == [("hepatitis", "Disease")]


@pytest.mark.parametrize("bad_line", ["garbage line", "111\t0\t7", "111\t0\t7\tAspirin"])
def test_pubtator_unrecognised_line_is_an_error(tmp_path, bad_line):
    path = tmp_path / "bad.pubtator"
    path.write_text(f"111|t|Aspirin induced asthma.\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.pubtator:2: unrecognised PubTator line"):
        pubtator_documents(path)


def test_pubtator_offset_mismatch_is_an_error(tmp_path):
    path = tmp_path / "shifted.pubtator"
    path.write_text("111|t|Aspirin induced asthma.\n111\t1\t8\tAspirin\tChemical\tD1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"shifted\.pubtator:2: offsets give"):
        pubtator_documents(path)
