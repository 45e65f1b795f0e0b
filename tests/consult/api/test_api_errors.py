"""One error shape over the whole API (consult/api/exceptions.py): {"detail": str}, plus "errors":
{field: [messages]} for validation errors, whatever the endpoint and whatever went wrong."""
from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from consult import extraction
from consult.services.prompt_templates import prompt_template_save
from review_helpers import case_create, user_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_tokenizer(monkeypatch):
    monkeypatch.setattr(extraction, "template_tokenizer", lambda: None)


def patient(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def error(response, status: int, *, validation: bool = False) -> dict:
    """The body of an error response, checked against the one shape."""
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"].strip(), body
    if validation:
        assert set(body) == {"detail", "errors"}, body
        assert isinstance(body["errors"], dict) and body["errors"], body
    else:
        assert set(body) == {"detail"}, body
    return body


def test_every_kind_of_api_error_has_the_same_shape():
    consultation, token = case_create()
    _, other_token = case_create()
    admin = APIClient()
    admin.force_login(user_create(username="root", role="admin"))
    template = prompt_template_save(
        template=None, actor=None, entity_type="SYMPTOM", text="Find every {anchor}.", anchor_words=["symptom"],
        soft_prompt_length=8, is_active=True)

    # 400: a serializer's field error, a service's refusal, a template the extractor could not use.
    blank = error(patient(token).post(f"/api/consultations/{consultation.id}/messages/", {"text": ""},
                                      format="json"), 400, validation=True)
    assert list(blank["errors"]) == ["text"] and blank["detail"] == blank["errors"]["text"][0]
    control = error(patient(token).post(f"/api/consultations/{consultation.id}/messages/", {"text": "a\x07b"},
                                        format="json"), 400, validation=True)
    assert "control characters" in control["detail"] and control["errors"] == {"text": [control["detail"]]}
    bad_template = error(admin.patch(f"/api/templates/{template.id}/", {"text": "Find {anchor} in {text}"},
                                     format="json"), 400, validation=True)
    assert "unknown placeholder" in bad_template["detail"] and "text" in bad_template["errors"]
    # An error not about one field, and one nested in a list field.
    both = error(admin.post(f"/api/cases/{consultation.id}/review/",
                            {"action": "accept", "entity_id": 1, "review_id": 1}, format="json"), 400,
                 validation=True)
    assert both["errors"] == {"non_field_errors": [both["detail"]]} and "exactly one" in both["detail"]
    nested = error(admin.post("/api/extract", {"texts": [""]}, format="json"), 400, validation=True)
    assert "texts" in nested["errors"] and "blank" in nested["detail"]
    error(patient(token).generic("POST", f"/api/consultations/{consultation.id}/messages/", "not json",
                                 content_type="application/json"), 400)
    error(admin.put(f"/api/cases/{consultation.id}/urgency/", {"urgency": "whenever", "reason": "x"},
                    format="json"), 400)

    # 401, 403, 404, 405.
    error(APIClient().get("/api/cases/"), 401)
    error(patient(token).get("/api/cases/"), 403)
    error(patient(token).patch(f"/api/templates/{template.id}/", {"text": "x {anchor}"}, format="json"), 403)
    error(patient(other_token).get(f"/api/consultations/{consultation.id}/"), 404)
    error(admin.get(f"/api/cases/{uuid.uuid4()}/"), 404)
    error(admin.get("/api/templates/999999/"), 404)
    error(patient(token).get(f"/api/consultations/{consultation.id}/messages/"), 405)
    error(admin.delete("/api/extract"), 405)
