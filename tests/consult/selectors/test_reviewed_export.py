"""`manage.py export_reviewed`: reviewed corrections become training data ner_engine can read back."""
from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from consult.models import Entity
from consult.services.review import consultation_review_mark, entity_add, entity_review_apply
from consult.vocabulary import REVIEW_TYPES
from ner_engine.datasets import dataset_load, documents_read_jsonl
from review_helpers import FIRST, SECOND, case_create, user_create

pytestmark = pytest.mark.django_db


def export(tmp_path, name="reviewed.jsonl", **options):
    path = tmp_path / name
    call_command("export_reviewed", output=str(path), **options)
    return path


def spans_by_text(document):
    return {(document.text[s.start:s.end], s.type) for s in document.spans}


def test_only_reviewed_consultations_are_exported(tmp_path):
    case_create()
    assert export(tmp_path).read_text() == ""


def test_review_corrections_change_the_exported_training_data(tmp_path):
    clinician = user_create(username="dr_export", role="clinician")
    consultation, _ = case_create()
    consultation_review_mark(consultation=consultation, actor=clinician, reviewed=True)
    before = {d.id: d for d in documents_read_jsonl(export(tmp_path, "before.jsonl"))}
    first_id = f"{consultation.id}-{consultation.messages.get(text=FIRST).id}"
    second_id = f"{consultation.id}-{consultation.messages.get(text=SECOND).id}"
    assert set(before) == {first_id, second_id}  # patient messages only
    assert spans_by_text(before[first_id]) == {("headache", "SYMPTOM"), ("fever", "SYMPTOM"),
                                               ("ibuprofen", "DRUG"), ("chest pain", "SYMPTOM")}

    def entity(text):
        return Entity.objects.get(message__consultation=consultation, text=text)

    start = FIRST.index("bad headache")
    entity_review_apply(consultation=consultation, actor=clinician, action="correct",
                        entity_id=entity("headache").id, start=start, end=start + len("bad headache"))
    entity_review_apply(consultation=consultation, actor=clinician, action="reject",
                        entity_id=entity("ibuprofen").id)
    entity_review_apply(consultation=consultation, actor=clinician, action="correct",
                        entity_id=entity("asthma").id, type="DISEASE", assertion="historical")
    neck = SECOND.index("stiff neck")
    entity_add(consultation=consultation, actor=clinician,
               message_id=consultation.messages.get(text=SECOND).id, type="SYMPTOM",
               start=neck, end=neck + len("stiff neck"))
    path = export(tmp_path, "after.jsonl")
    after = {d.id: d for d in documents_read_jsonl(path)}
    assert spans_by_text(after[first_id]) == {("bad headache", "SYMPTOM"), ("fever", "SYMPTOM"),
                                              ("chest pain", "SYMPTOM")}
    assert spans_by_text(after[second_id]) == {("asthma", "DISEASE"), ("stiff neck", "SYMPTOM")}
    assert after[first_id].types == REVIEW_TYPES
    # The same file through the training entry point's dataset name.
    assert [d.id for d in dataset_load(f"jsonl:{path}", "train")] == [d.id for d in after.values()]
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(raw[0]) == {"id", "text", "types", "spans"}
    assert set(raw[0]["spans"][0]) == {"start", "end", "type"}


def test_types_option_limits_the_export(tmp_path):
    clinician = user_create(username="dr_types", role="clinician")
    consultation, _ = case_create()
    consultation_review_mark(consultation=consultation, actor=clinician, reviewed=True)
    documents = documents_read_jsonl(export(tmp_path, types="drug"))
    assert all(d.types == ("DRUG",) for d in documents)
    assert {s.type for d in documents for s in d.spans} == {"DRUG"}
    with pytest.raises(CommandError, match="unknown"):
        export(tmp_path, types="FOOD")
