import pytest
from django.db import IntegrityError

from consult.models import Consultation, Message, RecordItem, Urgency
from consult.vocabulary import URGENCY_LEVELS
from consult.selectors.consultation import patient_token_hash


def test_urgency_levels_match_the_triage_engine_most_urgent_first():
    assert tuple(Urgency.values) == URGENCY_LEVELS


def test_urgency_rank_orders_levels_and_ranks_unassessed_lowest():
    ranks = [Urgency.rank(level) for level in URGENCY_LEVELS]
    assert ranks == sorted(ranks, reverse=True)
    assert Urgency.rank(None) < Urgency.rank("self_care")


def test_patient_token_is_stored_only_as_its_hash(consultation, patient_token):
    stored = Consultation.objects.get(pk=consultation.pk)
    assert patient_token not in stored.token_hash
    assert stored.token_hash == patient_token_hash(token=patient_token)
    assert len(patient_token) >= 40


def test_group_name_uses_the_uuid_hex(consultation):
    assert consultation.group_name == f"consultation_{consultation.id.hex}"


def test_new_consultation_is_open_and_unassessed(consultation):
    assert consultation.status == Consultation.Status.OPEN
    assert consultation.urgency is None


def test_record_item_key_is_unique_per_consultation_and_type(consultation):
    RecordItem.objects.create(consultation=consultation, type="SYMPTOM", key="headache", text="Headache")
    RecordItem.objects.create(consultation=consultation, type="DISEASE", key="headache", text="headache")
    with pytest.raises(IntegrityError):
        RecordItem.objects.create(consultation=consultation, type="SYMPTOM", key="headache", text="headache")


def test_messages_are_ordered_oldest_first(consultation):
    first = Message.objects.create(consultation=consultation, role="patient", text="one")
    second = Message.objects.create(consultation=consultation, role="patient", text="two")
    assert list(consultation.messages.all()) == [first, second]
