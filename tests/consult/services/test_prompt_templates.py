"""Admin-edited prompt templates: validation, versions, revert, the admin pages, and worker pickup."""
from __future__ import annotations

import pytest
from django.test import Client

from consult import extraction
from consult.models import PromptTemplate, PromptTemplateVersion
from consult.selectors.prompt_templates import (
    prompt_template_history,
    prompt_template_versions,
    prompt_templates_active,
)
from consult.services.prompt_templates import (
    prompt_template_delete,
    prompt_template_revert,
    prompt_template_save,
    prompt_templates_sync,
)
from ner_engine.triplets import TemplateError
from review_helpers import user_create

pytestmark = pytest.mark.django_db

GOOD = "Find every {anchor} the patient mentions."


@pytest.fixture(autouse=True)
def no_tokenizer(monkeypatch):
    # The word-count fallback is what runs without a model; one test below uses a fake tokenizer.
    monkeypatch.setattr(extraction, "template_tokenizer", lambda: None)


def save(template=None, actor=None, **values):
    values.setdefault("text", GOOD)
    values.setdefault("anchor_words", ["symptom"])
    values.setdefault("soft_prompt_length", 8)
    values.setdefault("is_active", True)
    return prompt_template_save(template=template, actor=actor, entity_type="SYMPTOM", **values)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"text": "   "}, "template text is empty"),
        ({"text": "Find every {anchor} in {text}."}, "unknown placeholder"),
        ({"text": "Find every {anchor"}, "malformed template"),
        ({"anchor_words": []}, "anchor words are empty"),
        ({"anchor_words": [""]}, "non-empty words"),
        ({"anchor_words": "symptom"}, "list of non-empty words"),
        ({"soft_prompt_length": 33}, "between 0 and 32"),
        ({"text": "word " * 60 + "{anchor}"}, "leave room for the text"),
    ],
)
def test_unusable_templates_are_refused(values, message):
    with pytest.raises(TemplateError, match=message):
        save(**values)
    assert not PromptTemplate.objects.exists()


def test_unknown_entity_type_is_refused():
    with pytest.raises(TemplateError, match="Unknown entity type"):
        prompt_template_save(template=None, actor=None, entity_type="FOOD", text=GOOD,
                             anchor_words=["food"], soft_prompt_length=8, is_active=True)


def test_length_is_checked_with_the_tokenizer_when_there_is_one(monkeypatch):
    class CharTokenizer:  # one token per character: a short text is already too long
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": list(range(len(text)))}

    monkeypatch.setattr(extraction, "template_tokenizer", lambda: CharTokenizer())
    with pytest.raises(TemplateError, match="tokens"):
        save(text="Find every {anchor} that the patient mentions anywhere in the message.")
    assert save(text="{anchor}?").version == 1


def test_versions_history_and_revert():
    admin = user_create(username="root", role="admin")
    template = save(actor=admin)
    assert template.version == 1
    template = save(template, actor=admin, text="List each {anchor}.")
    assert template.version == 2
    assert save(template, actor=admin, text="List each {anchor}.").version == 2  # nothing changed
    template = save(template, actor=admin, text="List each {anchor}.", is_active=False)
    history = prompt_template_versions(template=template)
    assert [(v.version, v.changed_by_name, v.note) for v in history] == [
        (3, "root", "changed is_active"), (2, "root", "changed text"), (1, "root", "created")]
    reverted = prompt_template_revert(template=template, version=1, actor=admin)
    assert (reverted.version, reverted.text, reverted.is_active) == (4, GOOD, True)
    assert PromptTemplateVersion.objects.get(template=template, version=4).note == "reverted to version 1"
    with pytest.raises(TemplateError, match="no version 9"):
        prompt_template_revert(template=template, version=9, actor=admin)


def test_seeded_template_keeps_its_first_state_in_history():
    seeded = PromptTemplate.objects.create(entity_type="DRUG", text="Find every {anchor}.", anchor_words=["drug"])
    prompt_template_save(template=seeded, actor=None, text="Find each {anchor}.")
    assert [(v.version, v.text) for v in seeded.versions.order_by("version")] == [
        (1, "Find every {anchor}."), (2, "Find each {anchor}.")]


def test_a_saved_template_reaches_the_extractor_on_the_next_task(monkeypatch):
    applied = []
    monkeypatch.setattr(extraction, "templates_apply", lambda **kwargs: applied.append(kwargs))
    prompt_templates_sync()
    template = save()
    prompt_templates_sync()
    save(template, text="List each {anchor}.")
    prompt_templates_sync()
    assert [call["version"] for call in applied] == ["builtin", "SYMPTOM.1", "SYMPTOM.2"]
    assert applied[-1]["overrides"] == {"SYMPTOM": {"template": "List each {anchor}.", "anchor": "symptom"}}
    assert prompt_templates_active()[1] == "SYMPTOM.2"


# Admin pages ---------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(user_create(username="root", role="admin"))
    return client


def form_data(template=None, **values):
    data = {"entity_type": "SYMPTOM", "text": GOOD, "anchor_words": '["symptom"]', "soft_prompt_length": "8",
            "is_active": "on", "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0",
            "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000"}
    if template is not None:
        versions = list(template.versions.order_by("-version"))
        data.update({"versions-TOTAL_FORMS": str(len(versions)), "versions-INITIAL_FORMS": str(len(versions))})
        for index, version in enumerate(versions):
            data[f"versions-{index}-id"] = str(version.pk)
            data[f"versions-{index}-template"] = str(template.pk)
    data.update(values)
    return data


def test_admin_add_shows_clear_errors_and_saves_a_version(admin_client):
    response = admin_client.post("/admin/consult/prompttemplate/add/",
                                 form_data(text="Find {anchor} in {message}"))
    assert response.status_code == 200
    assert "unknown placeholder(s) {message}" in response.content.decode()
    assert not PromptTemplate.objects.exists()
    response = admin_client.post("/admin/consult/prompttemplate/add/", form_data(anchor_words="[]"))
    assert "anchor words are empty" in response.content.decode()
    response = admin_client.post("/admin/consult/prompttemplate/add/", form_data())
    assert response.status_code == 302
    template = PromptTemplate.objects.get()
    assert template.version == 1 and template.versions.get().changed_by_name == "root"


def test_admin_change_bumps_version_and_revert_restores(admin_client):
    template = save()
    url = f"/admin/consult/prompttemplate/{template.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200 and "version history" in page.content.decode().lower()
    response = admin_client.post(url, form_data(template, text="List each {anchor}."))
    assert response.status_code == 302, response.content.decode()[:2000]
    template.refresh_from_db()
    assert (template.version, template.text) == (2, "List each {anchor}.")
    revert_url = f"/admin/consult/prompttemplate/{template.pk}/revert/1/"
    confirm = admin_client.get(revert_url)
    assert confirm.status_code == 200 and GOOD in confirm.content.decode()
    assert admin_client.post(revert_url).status_code == 302
    template.refresh_from_db()
    assert (template.version, template.text) == (3, GOOD)


def test_clinician_cannot_change_templates_in_the_admin():
    clinician = user_create(username="doc", role="clinician")
    clinician.is_staff = True
    clinician.save()
    template = save()
    client = Client()
    client.force_login(clinician)
    assert client.post(f"/admin/consult/prompttemplate/{template.pk}/revert/1/").status_code == 403
    assert client.post(f"/admin/consult/prompttemplate/{template.pk}/change/",
                       form_data(template, text="x {anchor}")).status_code == 403


def test_admin_lists_models_and_triage_rules(admin_client):
    models = admin_client.get("/admin/consult/nermodelcard/")
    assert models.status_code == 200
    assert "NER_MODEL" in models.content.decode()
    rules = admin_client.get("/admin/consult/triageruleentry/")
    assert rules.status_code == 200
    from consult.triage import knowledge_load

    page = rules.content.decode()
    knowledge = knowledge_load()
    assert all(rule.id in page for rule in knowledge.red_flags)
    assert all(complaint.id in page for complaint in knowledge.complaints)
    index = admin_client.get("/admin/").content.decode()
    assert "/admin/consult/nermodelcard/" in index and "/admin/consult/triageruleentry/" in index


def test_model_registry_reads_model_cards(tmp_path, settings):
    from consult import model_registry

    directory = tmp_path / "mine"
    directory.mkdir()
    (directory / "config.json").write_text("{}")
    (directory / "model_card.json").write_text(
        '{"version": "mine-1", "description": "test", "dev": {"x": {"strict": {"DRUG": '
        '{"precision": 0.5, "recall": 0.5, "f1": 0.5}}, "lenient": {}}}}')
    settings.NER_MODEL = str(directory)
    [active] = [m for m in model_registry.ner_models_installed() if m["active"]]
    assert (active["version"], active["scores"][0]["f1"]) == ("mine-1", 0.5)


def test_delete_keeps_the_version_history_and_records_who_deleted(settings):
    from rest_framework.test import APIClient

    admin = user_create(username="root", role="admin")
    template = save(actor=admin)
    save(template=template, actor=admin, text="List each {anchor}.")
    template_id = template.pk
    client = APIClient()
    client.force_login(admin)
    assert client.delete(f"/api/templates/{template_id}/").status_code == 204
    assert not PromptTemplate.objects.filter(pk=template_id).exists()
    history = prompt_template_history(entity_type="SYMPTOM")
    assert [(v.version, v.note, v.is_active, v.changed_by_name, v.template_id) for v in history] == [
        (3, "deleted", False, "root", None),
        (2, "changed text", True, "root", None),
        (1, "created", True, "root", None),
    ]
    assert history[0].text == "List each {anchor}." and str(history[0]) == "SYMPTOM v3 (template deleted)"
    # The workers' combined version no longer includes it: the model's shipped template applies again.
    assert "SYMPTOM" not in prompt_templates_active()[0]
    # The entity type is free for a new template, whose history starts again; the old rows stay.
    fresh = save(actor=admin)
    assert fresh.version == 1 and [v.version for v in prompt_template_versions(template=fresh)] == [1]
    assert len(prompt_template_history(entity_type="SYMPTOM")) == 4


def test_delete_of_a_template_seeded_before_versioning_keeps_its_state():
    template = PromptTemplate.objects.create(entity_type="DRUG", text="Find every {anchor}.", anchor_words=["drug"],
                                             is_active=True, version=2)
    prompt_template_delete(template=template, actor=None, note="retired")
    history = prompt_template_history(entity_type="DRUG")
    assert [(v.version, v.note, v.is_active, v.template_id) for v in history] == [
        (3, "retired", False, None), (2, "state before the first recorded edit", True, None)]
