"""Clinician workspace pages through Django's test client: access, highlighting, escaping, review forms."""
from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client

from consult.models import AuditEvent, ConsultationReview, Entity, EntityReview, Message
from review_helpers import FIRST, SECOND, case_create, user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinician_client(db):
    client = Client()
    client.force_login(user_create(username="doc", role="clinician"))
    return client


@pytest.fixture
def case(db):
    return case_create()[0]


def case_url(consultation, suffix=""):
    return f"/clinician/consultations/{consultation.id}/{suffix}"


def test_anonymous_is_sent_to_login_and_plain_users_are_refused(case):
    for url in ("/clinician/", case_url(case), case_url(case, "summary/"), case_url(case, "fhir.json")):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    plain = Client()
    plain.force_login(user_create(username="nurse_without_group", role="plain"))
    assert plain.get("/clinician/").status_code == 403
    assert plain.post(case_url(case, "reviewed/"), {"reviewed": "1"}).status_code == 403
    assert not ConsultationReview.objects.exists()


def test_login_page_signs_a_clinician_in():
    user_create(username="doc", role="clinician")
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "doc", "password": "pw-doc"})
    assert response.status_code == 302 and response["Location"] == "/clinician/"
    assert client.get("/clinician/").status_code == 200


def test_dashboard_puts_emergencies_first_and_filters(clinician_client):
    calm, _ = case_create(urgency="self_care")
    ambulance, _ = case_create(urgency="emergency_ambulance")
    page = clinician_client.get("/clinician/")
    assert page.status_code == 200
    assert "script-src 'self'" in page["Content-Security-Policy"]
    body = page.content.decode()
    assert body.index(str(ambulance.id)) < body.index(str(calm.id))
    assert "case-row--red-flag" in body and "1 red flag" in body
    filtered = clinician_client.get("/clinician/?urgency=self_care&reviewed=no&from=2000-01-01").content.decode()
    assert str(ambulance.id) not in filtered and str(calm.id) in filtered
    assert clinician_client.get("/clinician/?urgency=nonsense&from=garbage").status_code == 200


def paragraph_text(body: str, message_id: int) -> str:
    match = re.search(rf'<p class="turn__text" data-message-id="{message_id}">(.*?)</p>', body, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1)))


def test_case_page_highlights_in_place_and_shows_record_triage_summary(clinician_client, case):
    body = clinician_client.get(case_url(case)).content.decode()
    first = case.messages.get(text=FIRST)
    # Highlighting adds elements but never changes the text, so selection offsets match the message.
    assert paragraph_text(body, first.id) == FIRST
    assert re.search(r'<mark class="ent ent--symptom"[^>]*>headache</mark>', body)
    assert re.search(r'<mark class="ent ent--symptom ent--absent"[^>]*>chest pain</mark>', body)
    assert "Red flags" in body and "Fever with a stiff neck" in body
    assert "Chief complaint: headache, fever" in body
    assert "Do you have any other medical conditions?" in body or "conditions" in body
    assert "RXNORM 5640" in body and "duration: since Monday" in body
    assert "test-model-1" in body


def test_case_page_highlights_the_added_mention_over_the_rejected_one_on_the_same_words(clinician_client, case):
    fever = Entity.objects.get(message__consultation=case, text="fever")
    EntityReview.objects.create(message=fever.message, entity=fever, status=EntityReview.Status.REJECTED,
                                type="SYMPTOM", start=fever.start, end=fever.end, text="fever", assertion="present")
    added = EntityReview.objects.create(message=fever.message, status=EntityReview.Status.ADDED, type="DISEASE",
                                        start=fever.start, end=fever.end, text="fever", assertion="present")
    body = clinician_client.get(case_url(case)).content.decode()
    [mark] = re.findall(r'<mark class="([^"]*)" title="([^"]*)">fever</mark>', body)
    assert mark == ("ent ent--disease ent--overlap",
                    "DISEASE (present): added; SYMPTOM (present): rejected")
    # Both stay in the review table.
    assert f'id="ann-e{fever.id}" class="annotation annotation--rejected"' in body
    assert f'id="ann-r{added.id}" class="annotation annotation--added"' in body


def test_case_page_shows_retyping_as_a_provenance_note_only(clinician_client, case):
    fever = Entity.objects.get(message__consultation=case, text="fever")
    fever.attributes = {"assertion": "present", "retyped_from": "DISEASE",
                        "codes": [{"system": "ICD-10-CM", "code": "R50.9", "name": "Fever, unspecified",
                                   "score": 0.95}]}
    fever.save()
    body = clinician_client.get(case_url(case)).content.decode()
    assert "retyped_from" not in body
    note = "model type: DISEASE, retyped by ICD-10-CM chapter R (R50.9)"
    record = re.search(r'<h2 id="record-title">.*?</section>', body, re.S).group(0)
    # On demand: inside the entry's collapsed "Codes" details, with the codes; the preferred term in front.
    codes = re.search(r'<details class="codes codes--record">(.*?)</details>', record, re.S).group(1)
    assert f'<li class="muted">{note}</li>' in codes and "R50.9" in codes
    assert "→ Fever, unspecified" in record
    summary = re.search(r'<pre class="summary-text" id="summary-text">(.*?)</pre>', body, re.S).group(1)
    assert "fever" in summary and "retyped" not in summary and "DISEASE" not in summary


def test_patient_text_is_escaped(clinician_client):
    consultation, _ = case_create()
    evil = '<script>alert("x")</script> <img src=x onerror=alert(1)> headache'
    message = Message.objects.create(consultation=consultation, role=Message.Role.PATIENT, text=evil,
                                     status=Message.Status.PROCESSED)
    start = evil.index("headache")
    Entity.objects.create(message=message, type="SYMPTOM", text="headache", start=start, end=start + 8, score=0.9)
    body = clinician_client.get(case_url(consultation)).content.decode()
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert paragraph_text(body, message.id) == evil


def test_review_forms_accept_correct_add_reject_and_mark_reviewed(clinician_client, case):
    headache = Entity.objects.get(message__consultation=case, text="headache")
    response = clinician_client.post(case_url(case, "review/"), {"action": "accept", "entity_id": headache.id})
    assert response.status_code == 302 and response["Location"].endswith(f"#ann-e{headache.id}")
    fever = Entity.objects.get(message__consultation=case, text="fever")
    start = FIRST.index("fever")
    clinician_client.post(case_url(case, "review/"), {
        "action": "correct", "entity_id": fever.id, "type": "SYMPTOM", "start": start,
        "end": start + len("fever since Monday"), "assertion": "present"})
    second = case.messages.get(text=SECOND)
    neck = SECOND.index("stiff neck")
    clinician_client.post(case_url(case, "review/"), {
        "action": "add", "message_id": second.id, "type": "SYMPTOM", "start": neck, "end": neck + 10,
        "assertion": "present"})
    added = EntityReview.objects.get(entity__isnull=True)
    clinician_client.post(case_url(case, "review/"), {"action": "reject", "review_id": added.id})
    clinician_client.post(case_url(case, "reviewed/"), {"reviewed": "1"})
    assert [e.action for e in AuditEvent.objects.filter(consultation=case)] == [
        "entity_accept", "entity_correct", "entity_add", "entity_reject", "consultation_reviewed"]
    body = clinician_client.get(case_url(case)).content.decode()
    assert "fever since Monday" in body and "<dt>Model said</dt><dd>fever · SYMPTOM" in body
    assert "ent--rejected" in body
    assert "Audit trail" in body and body.count("<strong>doc</strong>") == 5
    assert "Remove review mark" in body


def test_review_form_errors_are_shown_not_raised(clinician_client, case):
    headache = Entity.objects.get(message__consultation=case, text="headache")
    response = clinician_client.post(case_url(case, "review/"), {
        "action": "correct", "entity_id": headache.id, "type": "SYMPTOM", "start": "0", "end": "9999"},
        follow=True)
    assert response.status_code == 200
    assert "outside the message" in response.content.decode()
    assert not AuditEvent.objects.exists()
    assert clinician_client.post(case_url(case, "review/"), {"action": "explode"}, follow=True).status_code == 200
    assert clinician_client.get(case_url(case, "review/")).status_code == 405


def test_summary_page_is_printable_and_fhir_downloads(clinician_client, case):
    page = clinician_client.get(case_url(case, "summary/"))
    body = page.content.decode()
    assert page.status_code == 200
    assert 'href="/static/consult/print.css" media="print"' in body
    assert "Chief complaint: headache, fever" in body and "Medications: ibuprofen" in body
    download = clinician_client.get(case_url(case, "fhir.json"))
    assert download["Content-Disposition"].startswith("attachment;")
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(json.loads(download.content))
