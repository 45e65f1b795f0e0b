"""Issue 14, item 2 (and the age and sex of item 6): the interview re-run on the reviewed findings, an urgency a
clinician owns (service, page form, REST API, audit, patient's state and websocket push, summary, FHIR), and the
patient's age and sex as a clinician edits them. The interview engine is the real one."""
from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client
from rest_framework.test import APIClient

from consult import fhir
from consult.models import AuditEvent, ClinicianUrgency, Consultation, EntityReview, Message
from consult.selectors.case import case_get, consultation_retriage, patient_details
from consult.selectors.consultation import consultation_state_get
from consult.services.consultations import consultation_create
from consult.services.review import (
    ReviewError,
    clinician_note_save,
    clinician_urgency_save,
    entity_review_apply,
    patient_details_save,
)
from consult.services.triage import consultation_triage
from review_helpers import case_create, entity_create, user_create

pytestmark = pytest.mark.django_db

FEVER_NECK = "I have a high fever and my neck feels really stiff"
NECK = "neck feels really stiff"


@pytest.fixture
def clinician(db):
    return user_create(username="dr_who", role="clinician")


@pytest.fixture
def fever_neck(db):
    """One processed message whose triage is what the worker's would be: the engine's decision on the
    extractor's mentions, stored as consultation_triage stores it."""
    consultation, token = consultation_create()
    message = Message.objects.create(consultation=consultation, role=Message.Role.PATIENT, text=FEVER_NECK,
                                     status=Message.Status.PROCESSED, model_version="test-model-1")
    entity_create(message, "high fever", "SYMPTOM", assertion="present")
    neck = entity_create(message, NECK, "SYMPTOM", assertion="present")
    consultation_triage(consultation=consultation, message=message)
    consultation.refresh_from_db()
    return consultation, token, neck


def fhir_validate(bundle: dict):
    from fhir.resources.R4B.bundle import Bundle

    return Bundle.model_validate(bundle)


# Re-triage -------------------------------------------------------------------------------------------------


def test_retriage_follows_the_review_and_writes_nothing(fever_neck, clinician):
    consultation, _, neck = fever_neck
    assert consultation.urgency == "emergency_ambulance"  # fever with a stiff neck: the interview's red flag
    retriage = consultation_retriage(consultation=consultation)
    assert retriage.urgency == "emergency_ambulance" and retriage.concluded and retriage.red_flags

    entity_review_apply(consultation=consultation, actor=clinician, action="correct", entity_id=neck.id,
                        assertion="absent")
    state = dict(Consultation.objects.get(pk=consultation.pk).triage_state)
    counts = (AuditEvent.objects.count(), EntityReview.objects.count(), Message.objects.count())
    retriage = consultation_retriage(consultation=consultation)
    # The clinician's "absent" reaches the interview: no red flag, so it would still be asking.
    assert retriage.urgency is None and retriage.red_flags == [] and not retriage.concluded and retriage.question
    # Pure: nothing written, the interview's own level and state untouched.
    consultation.refresh_from_db()
    assert consultation.urgency == "emergency_ambulance" and consultation.triage_state == state
    assert (AuditEvent.objects.count(), EntityReview.objects.count(), Message.objects.count()) == counts

    # A rejected mention is left out: the message's own words (ConText) say the stiff neck is present again.
    entity_review_apply(consultation=consultation, actor=clinician, action="reject", entity_id=neck.id)
    assert consultation_retriage(consultation=consultation).urgency == "emergency_ambulance"


def test_retriage_waits_for_a_processed_message(db):
    consultation, _ = consultation_create()
    Message.objects.create(consultation=consultation, role=Message.Role.PATIENT, text="my neck is stiff")
    assert consultation_retriage(consultation=consultation) is None


def test_case_page_shows_the_retriage_beside_the_interviews(fever_neck, clinician):
    consultation, _, neck = fever_neck
    entity_review_apply(consultation=consultation, actor=clinician, action="correct", entity_id=neck.id,
                        assertion="absent")
    client = Client()
    client.force_login(clinician)
    page = client.get(f"/clinician/consultations/{consultation.id}/").content.decode()
    model = page.split('id="urgency-model"')[1].split('id="urgency-retriage"')[0]
    rerun = page.split('id="urgency-retriage"')[1].split('id="urgency-clinician"')[0]
    assert "Call an ambulance now" in model and "Red flags: none" not in model
    assert "not assessed" in rerun and "Red flags: none" in rerun and "differs" in rerun
    assert "The interview would still ask" in rerun
    api = APIClient()
    api.force_login(clinician)
    body = api.get(f"/api/cases/{consultation.id}/").json()
    assert body["urgency"] == "emergency_ambulance"
    assert body["retriage"]["urgency"] is None and body["retriage"]["red_flags"] == []


# Urgency a clinician owns -------------------------------------------------------------------------------


def test_clinician_urgency_is_audited_and_refuses_bad_input(fever_neck, clinician):
    consultation, _, _ = fever_neck
    with pytest.raises(ReviewError, match="Unknown urgency"):
        clinician_urgency_save(consultation=consultation, actor=clinician, urgency="whenever", reason="x")
    with pytest.raises(ReviewError, match="reason"):
        clinician_urgency_save(consultation=consultation, actor=clinician, urgency="emergency", reason="  ")
    assert not AuditEvent.objects.filter(consultation=consultation).exists()

    saved = clinician_urgency_save(consultation=consultation, actor=clinician, urgency="consultation_24",
                                   reason="  Called the patient: neck is sore, not stiff; GP today. ")
    assert (saved.urgency, saved.reason, saved.set_by_name) == (
        "consultation_24", "Called the patient: neck is sore, not stiff; GP today.", "dr_who")
    clinician_urgency_save(consultation=consultation, actor=clinician, urgency="consultation_24",
                           reason="Called the patient: neck is sore, not stiff; GP today.")  # no change
    clinician_urgency_save(consultation=consultation, actor=clinician, urgency="emergency",
                                  reason="Worse on a second call.")
    events = AuditEvent.objects.filter(consultation=consultation, action="urgency_override").order_by("id")
    assert [(e.actor_name, e.before, e.after) for e in events] == [
        ("dr_who", {"urgency": "emergency_ambulance", "set_by": "interview"},
         {"urgency": "consultation_24", "reason": "Called the patient: neck is sore, not stiff; GP today.",
          "set_by": "clinician"}),
        ("dr_who", {"urgency": "consultation_24", "reason": "Called the patient: neck is sore, not stiff; GP today.",
                    "set_by": "clinician"},
         {"urgency": "emergency", "reason": "Worse on a second call.", "set_by": "clinician"}),
    ]
    consultation.refresh_from_db()
    assert consultation.urgency == "emergency_ambulance"  # the interview's level is kept beside it
    assert ClinicianUrgency.objects.get(consultation=consultation).urgency == "emergency"


def test_clinician_urgency_through_the_api(clinician):
    consultation, token = case_create()
    api = APIClient()
    api.force_login(clinician)
    url = f"/api/cases/{consultation.id}/urgency/"
    unknown = api.put(url, {"urgency": "whenever", "reason": "x"}, format="json")
    assert unknown.status_code == 400 and set(unknown.json()) == {"detail"} and "Unknown urgency" in (
        unknown.json()["detail"])
    empty = api.put(url, {"urgency": "emergency", "reason": ""}, format="json")
    assert empty.status_code == 400 and set(empty.json()) == {"detail"} and "reason" in empty.json()["detail"]
    assert api.put(url, {"urgency": "emergency"}, format="json").status_code == 400
    assert not AuditEvent.objects.filter(consultation=consultation).exists()

    done = api.put(url, {"urgency": "emergency", "reason": "Stiff neck with fever."}, format="json")
    assert done.status_code == 200, done.json()
    assert done.json()["urgency"] == "emergency" and done.json()["set_by"] == "dr_who"
    case = api.get(f"/api/cases/{consultation.id}/").json()
    assert case["clinician_urgency"]["reason"] == "Stiff neck with fever."
    assert [e["action"] for e in case["audit"]] == ["urgency_override"]
    # The dashboard's list puts the clinician's level in force, and filters by it.
    listed = api.get("/api/cases/?urgency=emergency").json()
    assert [row["id"] for row in listed["results"]] == [str(consultation.id)]
    # Patients and anonymous callers cannot set it.
    patient = APIClient()
    patient.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert patient.put(url, {"urgency": "self_care", "reason": "x"}, format="json").status_code == 403
    assert APIClient().put(url, {"urgency": "self_care", "reason": "x"}, format="json").status_code == 401


def test_clinician_urgency_form_on_the_case_page(clinician):
    consultation, _ = case_create()
    client = Client()
    client.force_login(clinician)
    url = f"/clinician/consultations/{consultation.id}/"
    refused = client.post(url + "urgency/", {"urgency": "emergency", "reason": ""}, follow=True)
    assert "Give a reason" in refused.content.decode()
    response = client.post(url + "urgency/", {"urgency": "emergency", "reason": "<b>A&E now</b>"}, follow=True)
    page = response.content.decode()
    clinician_col = page.split('id="urgency-clinician"')[1].split("</div>")[0]
    assert "Go to an emergency department now" in clinician_col and "&lt;b&gt;A&amp;E now&lt;/b&gt;" in clinician_col
    assert "<b>A&E now</b>" not in page
    dashboard = client.get("/clinician/").content.decode()
    assert "(clinician)" in dashboard and "Go to an emergency department now" in dashboard
    summary = client.get(url + "summary/").content.decode()
    assert "Urgency set by a clinician: Go to an emergency department now" in summary
    assert "Clinician&#x27;s urgency: Go to an emergency department now (set by dr_who: &lt;b&gt;A&amp;E now" in summary


def test_patient_state_and_push_carry_the_clinicians_level_and_reason(clinician, django_capture_on_commit_callbacks):
    consultation, token = case_create()
    assert consultation_state_get(consultation=consultation)["clinician_review"] is None
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(consultation.group_name, channel)
    # The service pushes on commit (pytest-django's test transaction never commits: run the callbacks).
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        clinician_urgency_save(consultation=consultation, actor=clinician, urgency="emergency",
                               reason="Please go to A&E <today>.")
    assert len(callbacks) == 1
    pushed = async_to_sync(layer.receive)(channel)
    assert pushed["type"] == "consultation.update"
    state = pushed["state"]
    assert state["clinician_review"]["urgency"] == "emergency"
    assert state["clinician_review"]["urgency_label"] == "Go to an emergency department now"
    assert state["clinician_review"]["reason"] == "Please go to A&E <today>."
    assert state["urgency"] == "consultation_24"  # the interview's level, unchanged
    assert "set_by" not in state["clinician_review"]  # the patient is not told who
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get(f"/api/consultations/{consultation.id}/").json()["clinician_review"] == state["clinician_review"]


def test_fhir_carries_the_clinicians_urgency_note_and_the_patient(clinician):
    consultation, _ = case_create()
    clinician_urgency_save(consultation=consultation, actor=clinician, urgency="emergency",
                           reason="Stiff neck with fever: A&E now.")
    clinician_note_save(consultation=consultation, actor=clinician, text="Phoned; ambulance not needed.")
    patient_details_save(consultation=consultation, actor=clinician, age="34", sex="female")
    bundle = fhir.consultation_fhir_bundle(case=case_get(consultation=consultation))
    fhir_validate(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    [encounter] = [r for r in resources if r["resourceType"] == "Encounter"]
    assert encounter["priority"]["coding"][0]["code"] == "EM"  # the interview said UR (consultation_24)
    assert encounter["priority"]["text"] == "Go to an emergency department now (set by a clinician)"
    impressions = {r["id"]: r for r in resources if r["resourceType"] == "ClinicalImpression"}
    [urgency] = [r for r in impressions.values() if r["summary"].startswith("Go to an emergency")]
    assert urgency["summary"] == "Go to an emergency department now: Stiff neck with fever: A&E now."
    assert "Get medical help today" in urgency["description"]
    assert urgency["note"][0]["authorString"] == "dr_who"
    assert any(r["summary"] == "Phoned; ambulance not needed." for r in impressions.values())
    [patient] = [r for r in resources if r["resourceType"] == "Patient"]
    assert patient["gender"] == "female"
    [age] = [r for r in resources if r["resourceType"] == "Observation" and r["code"]["text"] == "Age"]
    assert age["valueQuantity"]["value"] == 34 and age["status"] == "final"


# Age and sex --------------------------------------------------------------------------------------------


def test_age_and_sex_default_to_the_interviews_and_the_clinicians_edit_is_audited(clinician):
    consultation, _ = case_create()
    consultation.triage_state["decision"]["record"].update({"age": 34.0, "sex": "female"})
    consultation.save()
    details = patient_details(consultation=consultation)
    assert (details.age, details.sex, details.age_source, details.text) == (34.0, "female", "interview", "34 y, female")

    with pytest.raises(ReviewError, match="between 0 and"):
        patient_details_save(consultation=consultation, actor=clinician, age="200", sex="")
    with pytest.raises(ReviewError, match="Unknown sex"):
        patient_details_save(consultation=consultation, actor=clinician, age="", sex="other")
    client = Client()
    client.force_login(clinician)
    client.post(f"/clinician/consultations/{consultation.id}/patient/", {"age": "43", "sex": "female"})
    consultation.refresh_from_db()
    details = patient_details(consultation=consultation)
    assert (details.age, details.age_source, details.sex_source) == (43.0, "clinician", "clinician")
    assert "Patient: age 43, female." in case_get(consultation=consultation).summary_text
    assert "43 y, female" in client.get("/clinician/").content.decode()

    api = APIClient()
    api.force_login(clinician)
    cleared = api.put(f"/api/cases/{consultation.id}/patient/", {"age": None, "sex": None}, format="json")
    assert cleared.json() == {"age": 34.0, "sex": "female", "age_source": "interview", "sex_source": "interview"}
    bad = api.put(f"/api/cases/{consultation.id}/patient/", {"age": -1}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"detail"}
    events = AuditEvent.objects.filter(consultation=consultation, action="patient_details_edit").order_by("id")
    assert [(e.before, e.after) for e in events] == [
        ({"age": None, "sex": ""}, {"age": 43.0, "sex": "female"}),
        ({"age": 43.0, "sex": "female"}, {"age": None, "sex": ""})]
    assert json.loads(json.dumps([e.after for e in events]))  # JSON-safe audit values


def test_retriage_uses_the_age_a_clinician_recorded(clinician):
    """A fever in a baby under 3 months is an emergency (the knowledge base's red flag needs the age): the
    conversation never said how old the baby is; the clinician's recorded age reaches the re-run."""
    consultation, _ = consultation_create()
    message = Message.objects.create(consultation=consultation, role=Message.Role.PATIENT,
                                     text="My baby has a temperature of 38.2", status=Message.Status.PROCESSED,
                                     model_version="test-model-1")
    entity_create(message, "temperature of 38.2", "SYMPTOM", assertion="present")
    consultation_triage(consultation=consultation, message=message)
    consultation.refresh_from_db()
    before = consultation_retriage(consultation=consultation)
    assert before.urgency not in ("emergency", "emergency_ambulance")

    patient_details_save(consultation=consultation, actor=clinician, age=0.1, sex="female")
    after = consultation_retriage(consultation=consultation)
    assert after.urgency in ("emergency", "emergency_ambulance"), after.reasons
