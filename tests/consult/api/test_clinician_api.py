"""REST API of the clinician workspace: a permissions matrix over every endpoint, review actions,
templates, extraction limits, throttling, pagination, and a valid OpenAPI schema."""
from __future__ import annotations

import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from consult import extraction
from consult.extraction import ExtractionResult
from consult.models import AuditEvent, ConsultationReview, Entity, PromptTemplate
from consult.services.prompt_templates import prompt_template_save
from review_helpers import SECOND, case_create, user_create

pytestmark = pytest.mark.django_db

PRINCIPALS = ("anonymous", "patient", "other_patient", "clinician", "admin", "integrator")


@pytest.fixture(autouse=True)
def no_tokenizer(monkeypatch):
    monkeypatch.setattr(extraction, "template_tokenizer", lambda: None)


@pytest.fixture
def world(db):
    consultation, token = case_create()
    _, other_token = case_create()
    template = prompt_template_save(
        template=None, actor=None, entity_type="SYMPTOM", text="Find every {anchor}.", anchor_words=["symptom"],
        soft_prompt_length=8, is_active=True)
    integrator = user_create(username="his_system", role="plain")
    from django.contrib.auth.models import Group

    integrator.groups.add(Group.objects.get_or_create(name="integrator")[0])
    return {
        "consultation": consultation,
        "template": template,
        "tokens": {"patient": token, "other_patient": other_token},
        "users": {"clinician": user_create(username="doc", role="clinician"),
                  "admin": user_create(username="root", role="admin"), "integrator": integrator},
    }


def client_for(world, principal: str) -> APIClient:
    client = APIClient()
    if principal in world["tokens"]:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['tokens'][principal]}")
    elif principal in world["users"]:
        client.force_login(world["users"][principal])
    return client


@pytest.fixture
def fake_extraction(monkeypatch):
    monkeypatch.setattr(extraction, "model_unavailable_reason", lambda: None)
    monkeypatch.setattr(extraction, "templates_apply", lambda **kwargs: None)

    def texts_extract(*, texts):
        return [ExtractionResult(
            entities=[{"start": 0, "end": len(t.split()[0]), "type": "SYMPTOM", "text": t.split()[0], "score": 0.9,
                       "attributes": {"assertion": "present"}}],
            model_version="fake-1", template_version="SYMPTOM.1") for t in texts]

    monkeypatch.setattr(extraction, "texts_extract", texts_extract)


def request(world, principal, method, url, body=None):
    client = client_for(world, principal)
    kwargs = {"format": "json"} if body is not None else {}
    return getattr(client, method)(url, body, **kwargs) if body is not None else getattr(client, method)(url)


def endpoints(world):
    c = world["consultation"].id
    t = world["template"].id
    entity_id = Entity.objects.filter(message__consultation_id=c).first().id
    return [
        # (method, url, body, expected status per principal, in PRINCIPALS order)
        ("get", "/api/cases/", None, (401, 403, 403, 200, 200, 403)),
        ("get", f"/api/cases/{c}/", None, (401, 403, 403, 200, 200, 403)),
        ("post", f"/api/cases/{c}/review/", {"action": "accept", "entity_id": entity_id},
         (401, 403, 403, 200, 200, 403)),
        ("put", f"/api/cases/{c}/reviewed/", {"reviewed": True}, (401, 403, 403, 200, 200, 403)),
        ("put", f"/api/cases/{c}/note/", {"text": "Seen; advised 111 if worse."}, (401, 403, 403, 200, 200, 403)),
        ("get", f"/api/cases/{c}/fhir/", None, (401, 200, 404, 200, 200, 403)),
        ("get", "/api/templates/", None, (401, 403, 403, 200, 200, 403)),
        ("get", f"/api/templates/{t}/", None, (401, 403, 403, 200, 200, 403)),
        ("get", f"/api/templates/{t}/versions/", None, (401, 403, 403, 200, 200, 403)),
        ("post", "/api/templates/", {"entity_type": "DRUG", "text": "Find every {anchor}.", "anchor_words": ["drug"],
                                     "soft_prompt_length": 8, "is_active": False}, (401, 403, 403, 403, 201, 403)),
        ("patch", f"/api/templates/{t}/", {"text": "List each {anchor}."}, (401, 403, 403, 403, 200, 403)),
        ("post", f"/api/templates/{t}/revert/", {"version": 1}, (401, 403, 403, 403, 200, 403)),
        ("delete", f"/api/templates/{t}/", None, (401, 403, 403, 403, 204, 403)),
        ("post", "/api/extract", {"texts": ["headache today"]}, (401, 403, 403, 200, 200, 200)),
        ("get", "/api/schema/", None, (200, 200, 200, 200, 200, 200)),
        ("get", "/api/docs/", None, (200, 200, 200, 200, 200, 200)),
    ]


@pytest.mark.parametrize("index", range(15))
def test_permissions_matrix(world, fake_extraction, index):
    method, url, body, expected = endpoints(world)[index]
    got = []
    for principal in PRINCIPALS:
        # Each principal starts from the same state: a delete by one must not turn into a 404 for the next.
        if method == "delete" and not PromptTemplate.objects.filter(pk=world["template"].pk).exists():
            world["template"].pk = None
            world["template"] = prompt_template_save(
                template=None, actor=None, entity_type="SYMPTOM", text="Find every {anchor}.",
                anchor_words=["symptom"], soft_prompt_length=8, is_active=True)
            url = f"/api/templates/{world['template'].id}/"
        got.append(request(world, principal, method, url, body).status_code)
    assert dict(zip(PRINCIPALS, got)) == dict(zip(PRINCIPALS, expected)), f"{method.upper()} {url}"


def test_anonymous_gets_an_authentication_challenge(world):
    response = APIClient().get("/api/cases/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_unknown_consultation_is_404_for_clinicians_and_patients(world):
    url = "/api/cases/00000000-0000-0000-0000-000000000000/"
    assert request(world, "clinician", "get", url).status_code == 404
    assert request(world, "clinician", "get", url + "fhir/").status_code == 404
    assert request(world, "patient", "get", url + "fhir/").status_code == 404


def test_clinician_with_a_drf_token(world):
    token = Token.objects.create(user=world["users"]["clinician"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/cases/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/cases/").status_code == 401


def test_session_writes_need_the_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world["users"]["clinician"])
    response = client.put(f"/api/cases/{world['consultation'].id}/reviewed/", {"reviewed": True}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not ConsultationReview.objects.exists()


def test_case_list_filters_sorts_and_paginates(world):
    case_create(urgency="emergency_ambulance")
    client = client_for(world, "clinician")
    body = client.get("/api/cases/?page_size=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    assert body["results"][0]["urgency"] == "emergency_ambulance"
    assert body["results"][0]["red_flag_count"] == 1
    assert client.get("/api/cases/?urgency=emergency_ambulance").json()["count"] == 1
    assert client.get("/api/cases/?reviewed=true").json()["count"] == 0
    assert client.get("/api/cases/?urgency=whenever").status_code == 400
    assert client.get("/api/cases/?created_from=2000-01-01&created_to=2000-01-02").json()["count"] == 0


def test_review_actions_through_the_api_are_audited(world):
    consultation = world["consultation"]
    client = client_for(world, "clinician")
    url = f"/api/cases/{consultation.id}/review/"
    fever = Entity.objects.get(message__consultation=consultation, text="fever")
    corrected = client.post(url, {"action": "correct", "entity_id": fever.id, "type": "DISEASE",
                                  "assertion": None}, format="json")
    assert corrected.status_code == 200, corrected.json()
    assert corrected.json()["status"] == "corrected" and corrected.json()["original"]["type"] == "SYMPTOM"
    second = consultation.messages.get(text__startswith="I also")
    start = SECOND.index("stiff neck")
    added = client.post(url, {"action": "add", "message_id": second.id, "type": "SYMPTOM", "start": start,
                              "end": start + 10}, format="json")
    assert added.status_code == 201 and added.json()["text"] == "stiff neck"
    rejected = client.post(url, {"action": "reject", "review_id": added.json()["review_id"]}, format="json")
    assert rejected.json()["status"] == "rejected"
    assert client.post(url, {"action": "add", "message_id": second.id}, format="json").status_code == 400
    assert client.post(url, {"action": "accept"}, format="json").status_code == 400
    bad_span = client.post(url, {"action": "correct", "entity_id": fever.id, "start": 0, "end": 999}, format="json")
    assert bad_span.status_code == 400 and "outside the message" in bad_span.json()["detail"]
    other = Entity.objects.exclude(message__consultation=consultation).first()
    assert client.post(url, {"action": "accept", "entity_id": other.id}, format="json").status_code == 400
    assert client.put(f"/api/cases/{consultation.id}/reviewed/", {"reviewed": True}, format="json").json() == {
        "reviewed": True}
    case = client.get(f"/api/cases/{consultation.id}/").json()
    assert case["reviewed"] is True and case["reviewed_by"] == "doc"
    assert [(e["action"], e["actor"]) for e in case["audit"]] == [
        ("entity_correct", "doc"), ("entity_add", "doc"), ("entity_reject", "doc"), ("consultation_reviewed", "doc")]
    assert AuditEvent.objects.filter(consultation=consultation).count() == 4
    assert {"record", "triage", "questions", "summary_text", "messages"} <= set(case)


def test_context_edit_and_note_through_the_api_are_audited(world):
    consultation = world["consultation"]
    client = client_for(world, "clinician")
    url = f"/api/cases/{consultation.id}/review/"
    fever = Entity.objects.get(message__consultation=consultation, text="fever")
    edited = client.post(url, {"action": "context_edit", "entity_id": fever.id, "assertion": "absent",
                               "codes_keep": []}, format="json")
    assert edited.status_code == 200, edited.json()
    assert edited.json()["assertion"] == "absent" and edited.json()["codes"] == []
    # Nothing proposed to accept for a model mention; codes_keep belongs to context_edit only.
    refused = client.post(url, {"action": "context_accept", "entity_id": fever.id}, format="json")
    assert refused.status_code == 400 and "no proposed values" in refused.json()["detail"]
    misplaced = client.post(url, {"action": "accept", "entity_id": fever.id, "codes_keep": []}, format="json")
    assert misplaced.status_code == 400 and "detail" in misplaced.json()

    note_url = f"/api/cases/{consultation.id}/note/"
    assert client.put(note_url, {"text": "  Seen; advised 111 if worse. "}, format="json").json() == {
        "text": "Seen; advised 111 if worse."}
    too_long = client.put(note_url, {"text": "x" * 6000}, format="json")
    assert too_long.status_code == 400 and "at most" in too_long.json()["detail"]
    case = client.get(f"/api/cases/{consultation.id}/").json()
    assert [e["action"] for e in case["audit"]] == ["context_edit", "note_edit"]
    assert "Seen; advised 111 if worse." in case["summary_text"]


def test_fhir_endpoint_returns_a_valid_bundle(world):
    from fhir.resources.R4B.bundle import Bundle

    response = request(world, "patient", "get", f"/api/cases/{world['consultation'].id}/fhir/")
    assert response["Content-Type"].startswith("application/fhir+json")
    Bundle.model_validate(json.loads(response.content))


def test_template_api_validates_and_versions(world):
    client = client_for(world, "admin")
    template = world["template"]
    bad = client.patch(f"/api/templates/{template.id}/", {"text": "Find {anchor} in {text}"}, format="json")
    assert bad.status_code == 400 and "unknown placeholder" in bad.json()["errors"]["text"][0]
    assert client.patch(f"/api/templates/{template.id}/", {"entity_type": "DRUG"}, format="json").status_code == 400
    assert client.patch(f"/api/templates/{template.id}/", {"anchor_words": []}, format="json").status_code == 400
    changed = client.patch(f"/api/templates/{template.id}/", {"text": "List each {anchor}."}, format="json")
    assert changed.json()["version"] == 2
    versions = client.get(f"/api/templates/{template.id}/versions/").json()["results"]
    assert [(v["version"], v["changed_by_name"]) for v in versions] == [(2, "root"), (1, "")]
    reverted = client.post(f"/api/templates/{template.id}/revert/", {"version": 1}, format="json")
    assert reverted.json()["version"] == 3 and reverted.json()["text"] == "Find every {anchor}."
    assert client.post(f"/api/templates/{template.id}/revert/", {"version": 42}, format="json").status_code == 400
    duplicate = client.post("/api/templates/", {"entity_type": "SYMPTOM", "text": "x {anchor}",
                                                "anchor_words": ["s"]}, format="json")
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["errors"]["entity_type"][0]


def test_extract_limits_and_response(world, fake_extraction, settings):
    client = client_for(world, "integrator")
    ok = client.post("/api/extract", {"texts": ["headache since Monday", "cough"]}, format="json")
    assert ok.status_code == 200
    body = ok.json()
    assert body["model_version"] == "fake-1" and body["template_version"] == "SYMPTOM.1"
    assert [r["entities"][0]["text"] for r in body["results"]] == ["headache", "cough"]
    assert body["results"][0]["entities"][0]["attributes"] == {"assertion": "present"}
    for bad in ({"texts": []}, {"texts": ["a"] * (settings.EXTRACT_MAX_TEXTS + 1)},
                {"texts": ["x" * (settings.MESSAGE_MAX_CHARS + 1)]}, {"texts": [""]}, {"texts": "headache"}, {}):
        assert client.post("/api/extract", bad, format="json").status_code == 400, bad


def test_extract_without_a_model_is_503(world, monkeypatch):
    monkeypatch.setattr(extraction, "model_unavailable_reason", lambda: "no model")
    assert request(world, "integrator", "post", "/api/extract", {"texts": ["cough"]}).status_code == 503


def test_extract_is_throttled(world, fake_extraction, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"extract": "2/hour", "clinician": "100/hour"})
    client = client_for(world, "integrator")
    codes = [client.post("/api/extract", {"texts": ["cough"]}, format="json").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


@pytest.mark.slow
def test_extract_with_the_real_model(world):
    reason = extraction.model_unavailable_reason()
    if reason:
        pytest.skip(f"real NER model needed: {reason}")
    body = request(world, "integrator", "post", "/api/extract",
                   {"texts": ["I have a headache and I take ibuprofen."]}).json()
    assert body["model_version"]
    entities = body["results"][0]["entities"]
    assert all("attributes" in e and e["text"] for e in entities)


def test_openapi_schema_is_valid():
    from openapi_spec_validator import validate

    response = APIClient().get("/api/schema/?format=json")
    schema = json.loads(response.content)
    validate(schema)
    for path in ("/api/cases/", "/api/cases/{consultation_id}/review/", "/api/cases/{consultation_id}/fhir/",
                 "/api/templates/", "/api/templates/{id}/revert/", "/api/extract", "/api/consultations/"):
        assert path in schema["paths"], path
    assert {"patientToken", "tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])
