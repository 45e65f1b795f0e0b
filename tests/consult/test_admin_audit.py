"""The Django admin never changes clinical data behind the audit trail's back (issue 14, items 3, 4, 9).

`test_every_writable_admin_model_is_audited` enumerates every model registered in the admin (and their
inlines): a model the admin can add, change or delete must be one whose admin writes through an audited
service, and that service must really leave a record when the admin saves. A new writable registration fails it.
"""
from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client, RequestFactory

from consult.models import AuditEvent, Entity, EntityReview, PromptTemplate, PromptTemplateVersion
from consult.services.prompt_templates import prompt_template_save
from consult.services.review import entity_review_apply
from review_helpers import case_create, user_create

pytestmark = pytest.mark.django_db

# Writable in the admin, and how each write is recorded: prompt templates are saved by
# consult.services.prompt_templates.prompt_template_save, which writes a PromptTemplateVersion (who, when, what, note).
AUDITED_WRITES = {PromptTemplate: PromptTemplateVersion}
# Accounts, groups and API tokens (django.contrib.auth, DRF authtoken): not clinical data.
OUTSIDE_THE_CLINICAL_RECORD = {"auth", "authtoken"}


def superuser_request():
    request = RequestFactory().get("/admin/")
    request.user = user_create(username="root", role="admin")
    return request


def writes(model_admin, request) -> list[str]:
    allowed = []
    if model_admin.has_add_permission(request, *([None] if isinstance(model_admin, admin.options.InlineModelAdmin) else [])):
        allowed.append("add")
    if model_admin.has_delete_permission(request, None):
        allowed.append("delete")
    if model_admin.has_change_permission(request, None):
        editable = [f for f in (model_admin.get_fields(request) or [])
                    if f not in model_admin.get_readonly_fields(request)]
        if editable:
            allowed.append("change " + ", ".join(map(str, editable)))
    return allowed


def test_every_writable_admin_model_is_audited():
    request = superuser_request()
    registered = [(model, model_admin) for model, model_admin in admin.site._registry.items()
                  if model._meta.app_label not in OUTSIDE_THE_CLINICAL_RECORD]
    assert {Entity, EntityReview, AuditEvent} <= {model for model, _ in registered}
    unaudited = {}
    for model, model_admin in registered:
        allowed = writes(model_admin, request)
        if allowed and model not in AUDITED_WRITES:
            unaudited[model.__name__] = allowed
        for inline in model_admin.get_inline_instances(request, None) if allowed else []:
            inline_allowed = writes(inline, request)
            if inline_allowed and inline.model not in AUDITED_WRITES:
                unaudited[f"{model.__name__} inline {inline.model.__name__}"] = inline_allowed
    assert unaudited == {}, f"admin writes without an audit record: {unaudited}"
    # Model output, reviews and the audit trail in particular: no write of any kind.
    for model in (Entity, EntityReview, AuditEvent):
        assert writes(admin.site._registry[model], request) == []


def admin_template_post(client, template, **values):
    versions = list(template.versions.order_by("-version"))
    data = {"text": template.text, "anchor_words": json.dumps(template.anchor_words), "is_active": "on",
            "versions-TOTAL_FORMS": str(len(versions)), "versions-INITIAL_FORMS": str(len(versions)),
            "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000"}
    for index, version in enumerate(versions):
        data[f"versions-{index}-id"] = str(version.pk)
        data[f"versions-{index}-template"] = str(template.pk)
    data.update(values)
    return client.post(f"/admin/consult/prompttemplate/{template.pk}/change/", data)


def test_the_writable_ones_record_every_save_with_the_admins_note():

    template = prompt_template_save(
        template=None, actor=None, entity_type="SYMPTOM", text="Find every {anchor} the patient has.",
        anchor_words=["symptom"], soft_prompt_length=8, is_active=False)
    client = Client()
    client.force_login(user_create(username="root", role="admin"))
    records = AUDITED_WRITES[PromptTemplate].objects.count()
    response = admin_template_post(client, template, text="List each {anchor} the patient reports.",
                                   change_note="wording closer to patients' messages", soft_prompt_length="20")
    assert response.status_code == 302, response.content.decode()[:3000]
    assert AUDITED_WRITES[PromptTemplate].objects.count() == records + 1
    newest = template.versions.order_by("-version").first()
    assert newest.note == "wording closer to patients' messages (changed text, is_active)"
    assert newest.changed_by_name == "root"
    template.refresh_from_db()
    # The soft-prompt length is read-only (the trained model fixes it): a posted value changes nothing.
    assert template.soft_prompt_length == 8
    page = client.get(f"/admin/consult/prompttemplate/{template.pk}/change/").content.decode()
    assert 'name="soft_prompt_length"' not in page and "keeps the length it was trained with" in page
    assert "Preview on sample text" in page
    # No delete: it would take the version history with it.
    assert client.post(f"/admin/consult/prompttemplate/{template.pk}/delete/", {"post": "yes"}).status_code == 403
    assert PromptTemplate.objects.filter(pk=template.pk).exists()


def test_preview_refuses_an_unusable_template_without_saving():

    template = prompt_template_save(
        template=None, actor=None, entity_type="SYMPTOM", text="Find every {anchor}.", anchor_words=["symptom"],
        soft_prompt_length=8, is_active=False)
    client = Client()
    client.force_login(user_create(username="root", role="admin"))
    response = client.post(f"/admin/consult/prompttemplate/{template.pk}/preview/",
                           {"text": "Find {anchor} in {message}", "anchor_words": '["symptom"]', "sample": "a cough"})
    assert response.status_code == 200
    assert "unknown placeholder(s) {message}" in response.content.decode()
    template.refresh_from_db()
    assert (template.version, template.text) == (1, "Find every {anchor}.")


@pytest.fixture
def staff_clinician():
    user = user_create(username="doc", role="clinician")
    user.is_staff = True
    user.save()
    # What manage.py load_defaults gives the clinician group, change_entity included.
    user.groups.get().permissions.set(Permission.objects.filter(
        content_type__app_label="consult",
        codename__in=["view_consultation", "view_message", "view_entity", "change_entity", "view_entityreview",
                      "view_auditevent"]))
    client = Client()
    client.force_login(user)
    return client


def test_admin_refuses_to_edit_model_output_and_links_to_the_workspace(staff_clinician):
    consultation, _ = case_create()
    chest = Entity.objects.get(message__consultation=consultation, text="chest pain")
    url = f"/admin/consult/entity/{chest.pk}/change/"
    page = staff_clinician.get(url)
    body = page.content.decode()
    assert page.status_code == 200
    assert 'name="assertion"' not in body and 'name="_save"' not in body
    assert f'href="/clinician/consultations/{consultation.id}/#ann-e{chest.pk}"' in body
    assert 'href="/clinician/"' in body  # the workspace from every admin page
    response = staff_clinician.post(url, {"assertion": "present", "code": "MADE-UP", "type": "SYMPTOM"})
    assert response.status_code == 403
    chest.refresh_from_db()
    assert (chest.assertion, chest.code) == ("absent", None)
    assert not AuditEvent.objects.exists()
    consultation_page = staff_clinician.get(f"/admin/consult/consultation/{consultation.id}/change/")
    assert f'href="/clinician/consultations/{consultation.id}/"' in consultation_page.content.decode()
    assert staff_clinician.post(f"/admin/consult/consultation/{consultation.id}/change/",
                                {"urgency": "self_care"}).status_code == 403


def test_corrected_is_a_status_and_a_filter_in_the_admin(staff_clinician):

    consultation, _ = case_create()
    fever = Entity.objects.get(message__consultation=consultation, text="fever")
    entity_review_apply(consultation=consultation, actor=None, action="correct", entity_id=fever.pk,
                        assertion="possible")
    fever.refresh_from_db()
    assert fever.review_status == "corrected"
    listing = staff_clinician.get("/admin/consult/entity/?review_status__exact=corrected").content.decode()
    assert "?review_status__exact=corrected" in listing and ">Corrected<" in listing
    assert f"/admin/consult/entity/{fever.pk}/change/" in listing
    others = Entity.objects.filter(message__consultation=consultation).exclude(pk=fever.pk)
    assert all(f"/admin/consult/entity/{e.pk}/change/" not in listing for e in others)


def test_favicon_is_served():
    response = Client().get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("consult/favicon.svg")
    assert Client().get(response["Location"]).status_code == 200
