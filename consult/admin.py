import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from consult import extraction, model_registry
from consult.extraction import TemplateError
from consult.models import (
    AuditEvent,
    ClinicianNote,
    ClinicianUrgency,
    Consultation,
    ConsultationReview,
    Entity,
    EntityReview,
    Message,
    NerModelCard,
    PromptTemplate,
    PromptTemplateVersion,
    RecordItem,
    TriageEvent,
    TriageRuleEntry,
)
from consult.selectors.prompt_templates import prompt_templates_active
from consult.services.prompt_templates import (
    VERSIONED_FIELDS,
    prompt_template_revert,
    prompt_template_save,
    prompt_template_validate,
    template_error_field,
)
from consult.triage import knowledge_load
from consult.triage.knowledge import KNOWLEDGE_DIR


# Clinical data, the model's output, reviews and the audit trail are read-only here: every change to them goes
# through consult.services.review in the clinician workspace, which audits it. tests/consult/test_admin_audit.py
# enumerates the registered models and fails on any that the admin could write without an audit record.


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def workspace_link(consultation_id, *, anchor: str = "", label: str = "Open in the clinician workspace") -> str:
    url = reverse("clinician-case", kwargs={"consultation_id": consultation_id}) + anchor
    return format_html('<a class="workspace-link" href="{}">{}</a>', url, label)


class MessageInline(admin.TabularInline):
    model = Message
    fk_name = "consultation"
    fields = ("role", "text", "status", "error", "created_at", "processed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


class RecordItemInline(admin.TabularInline):
    model = RecordItem
    fields = ("type", "text", "key", "assertion", "first_seen_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


class TriageEventInline(admin.TabularInline):
    model = TriageEvent
    fields = ("rule_id", "urgency", "reason", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Consultation)
class ConsultationAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "urgency", "created_at", "updated_at", "case_page")
    list_filter = ("status", "urgency")
    fields = ("case_page", "id", "status", "urgency", "age", "sex", "summary", "created_at", "updated_at",
              "triage_state")
    readonly_fields = fields
    inlines = [RecordItemInline, TriageEventInline, MessageInline]

    @admin.display(description="Case page")
    def case_page(self, consultation: Consultation) -> str:
        return workspace_link(consultation.id, label="Open case")


class EntityInline(admin.TabularInline):
    model = Entity
    fields = ("type", "text", "start", "end", "score", "assertion", "review_status", "record_item")
    readonly_fields = ("type", "text", "start", "end", "score", "assertion", "review_status", "record_item")
    extra = 0
    can_delete = False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "consultation", "role", "status", "created_at", "processed_at")
    list_filter = ("role", "status")
    readonly_fields = ("consultation", "role", "text", "reply_to", "created_at", "processed_at",
                       "model_version", "template_version")
    inlines = [EntityInline]


@admin.register(Entity)
class EntityAdmin(ReadOnlyAdmin):
    """The model's output. Verdicts and corrections are given in the clinician workspace (the link on each
    entity), which keeps the audit trail; `review_status` mirrors them, including "corrected"."""

    list_display = ("id", "type", "text", "score", "review_status", "message", "case_page")
    list_filter = ("type", "review_status")
    fields = ("case_page", "message", "record_item", "type", "text", "start", "end", "score", "assertion", "code",
              "code_system", "attributes", "model_version", "template_version", "review_status")
    readonly_fields = fields

    @admin.display(description="Review")
    def case_page(self, entity: Entity) -> str:
        return workspace_link(entity.message.consultation_id, anchor=f"#ann-e{entity.id}",
                              label="Review in the clinician workspace")


# Prompt templates -----------------------------------------------------------------------------------


SOFT_PROMPT_EXPLANATION = (
    "Read-only: the number of learned prompt vectors is part of the trained model (its weights hold exactly that "
    "many per query), so the running model keeps the length it was trained with whatever is entered here. "
    "To change it, train a model with another soft_prompt_length (python -m ner_engine train) and install it.")


class PromptTemplateForm(forms.ModelForm):
    change_note = forms.CharField(
        required=False, max_length=200, label="Note on this change",
        help_text="Why you changed the template; kept in the version history with what changed.")

    class Meta:
        model = PromptTemplate
        fields = ("entity_type", "text", "anchor_words", "is_active")
        help_texts = {
            "anchor_words": 'A JSON list, e.g. ["symptom", "complaint"]; the first fills {anchor}.',
        }

    def clean(self):
        cleaned = super().clean()
        entity_type = cleaned.get("entity_type") or getattr(self.instance, "entity_type", "")
        if self.errors:
            return cleaned
        try:
            prompt_template_validate(
                entity_type=entity_type, text=cleaned.get("text", ""), anchor_words=cleaned.get("anchor_words"),
                soft_prompt_length=self.instance.soft_prompt_length,
            )
        except TemplateError as error:
            raise ValidationError({template_error_field(error=error): str(error)}) from None
        return cleaned


class PromptTemplateVersionInline(admin.TabularInline):
    model = PromptTemplateVersion
    fields = ("version", "changed_at", "changed_by_name", "note", "is_active", "text", "anchor_words",
              "soft_prompt_length", "revert")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-version",)
    verbose_name_plural = "version history"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the history is never rewritten

    @admin.display(description="")
    def revert(self, version: PromptTemplateVersion) -> str:
        if version.version == version.template.version:
            return "current"
        url = reverse("admin:consult_prompttemplate_revert", args=[version.template_id, version.version])
        return format_html('<a href="{}">Revert to this version</a>', url)


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    form = PromptTemplateForm
    list_display = ("entity_type", "is_active", "version", "soft_prompt_length", "updated_at")
    list_filter = ("is_active",)
    readonly_fields = ("version", "updated_at", "soft_prompt")
    fields = ("entity_type", "text", "anchor_words", "is_active", "change_note", "soft_prompt", "version",
              "updated_at")
    inlines = [PromptTemplateVersionInline]
    change_form_template = "admin/consult/prompttemplate/change_form.html"

    @admin.display(description="Soft prompt length")
    def soft_prompt(self, template: PromptTemplate) -> str:
        return format_html('{}<div class="help">{}</div>', template.soft_prompt_length, SOFT_PROMPT_EXPLANATION)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deactivate a template here; DELETE /api/templates/<id>/ deletes through
        # services.prompt_templates.prompt_template_delete, which keeps the version history.
        return False

    def get_readonly_fields(self, request, obj=None):
        # A template belongs to its entity type; a different type is a different template.
        return (*self.readonly_fields, "entity_type") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        # Saved through the service: it versions the change and records who made it, with the admin's note.
        # Workers compare versions before each message, so the edit takes effect on their next task.
        values = {name: form.cleaned_data[name] for name in VERSIONED_FIELDS
                  if name in form.cleaned_data}
        note = form.cleaned_data.get("change_note", "").strip()
        if note and change:
            changed = [name for name, value in values.items() if form.initial.get(name) != value]
            note = f"{note} (changed {', '.join(changed)})" if changed else note
        saved = prompt_template_save(
            template=obj if change else None, actor=request.user, entity_type=obj.entity_type, note=note, **values
        )
        obj.pk, obj.version, obj.updated_at = saved.pk, saved.version, saved.updated_at

    def get_urls(self):
        return [
            path("<int:template_id>/preview/", self.admin_site.admin_view(self.preview_view),
                 name="consult_prompttemplate_preview"),
            path("<int:template_id>/revert/<int:version>/", self.admin_site.admin_view(self.revert_view),
                 name="consult_prompttemplate_revert"),
            *super().get_urls(),
        ]

    def preview_view(self, request, template_id: int):
        """The extraction of a sample text with the active templates and with the edited one, side by side;
        nothing is saved. POSTed by the change form's "Preview on sample text" button (its current, unsaved
        values) or by the preview page's own form."""
        template = get_object_or_404(PromptTemplate, pk=template_id)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else {}
        text = data.get("text", template.text)
        anchor_text = data.get("anchor_words")
        sample = data.get("sample", "") or template_preview_sample()
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "template": template,
                   "title": f"Preview the {template.entity_type} template", "text": text, "sample": sample,
                   "anchor_words_text": anchor_text if anchor_text is not None else json.dumps(template.anchor_words)}
        try:
            anchor_words = json.loads(anchor_text) if anchor_text is not None else list(template.anchor_words)
            prompt_template_validate(entity_type=template.entity_type, text=text,
                                     anchor_words=anchor_words,
                                     soft_prompt_length=template.soft_prompt_length)
            context.update(template_preview_run(entity_type=template.entity_type, text=text,
                                                anchor_words=anchor_words, sample=sample))
        except (TemplateError, ValueError) as error:
            context["error"] = str(error)
        except extraction.ModelUnavailable as error:
            context["error"] = f"No model to preview with: {error}"
        return TemplateResponse(request, "admin/consult/prompttemplate/preview.html", context)

    def revert_view(self, request, template_id: int, version: int):
        template = get_object_or_404(PromptTemplate, pk=template_id)
        if not self.has_change_permission(request, template):
            raise PermissionDenied
        earlier = get_object_or_404(PromptTemplateVersion, template=template, version=version)
        if request.method == "POST":
            try:
                saved = prompt_template_revert(template=template, version=version,
                                               actor=request.user)
            except TemplateError as error:
                self.message_user(request, f"Could not revert: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{saved.entity_type} reverted to version {version}; "
                                  f"it is now version {saved.version}.", messages.SUCCESS)
            return redirect("admin:consult_prompttemplate_change", template.pk)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "template": template,
                   "earlier": earlier, "title": f"Revert {template.entity_type} to version {version}"}
        return TemplateResponse(request, "admin/consult/prompttemplate/revert_confirm.html", context)


# Template preview ---------------------------------------------------------------------------------------

# A patient-style message with a symptom, a condition, a medicine, a body part, a duration and a severity.
PREVIEW_SAMPLE = ("I've had a really bad headache and a stiff neck since Tuesday. I have asthma and took "
                  "two paracetamol this morning, but I don't have a rash.")


def template_preview_sample() -> str:
    return PREVIEW_SAMPLE


def template_preview_run(*, entity_type: str, text: str, anchor_words: list[str], sample: str) -> dict:
    """{"before": [...], "after": [...], "sample_segments_*"}: the sample's entities with the active templates
    (what the workers use now) and with `text` as the `entity_type` template; entities as {"type", "text",
    "start", "end", "score", "changed"} where `changed` marks those the other side does not have."""
    overrides, version = prompt_templates_active()
    before = extraction.preview_extract(overrides=overrides, text=sample).entities
    edited = {**overrides, entity_type: {"template": text, "anchor": anchor_words[0]}}
    after = extraction.preview_extract(overrides=edited, text=sample).entities

    def rows(entities, other):
        other_keys = {(e["start"], e["end"], e["type"]) for e in other}
        return [{"type": e["type"], "text": e["text"], "start": e["start"], "end": e["end"],
                 "score": round(e["score"], 2), "changed": (e["start"], e["end"], e["type"]) not in other_keys}
                for e in entities]

    return {"before": rows(before, after), "after": rows(after, before), "active_version": version,
            "entity_type_focus": entity_type}


# Review records (read-only: written by the clinician workspace) --------------------------------------


@admin.register(ClinicianNote)
class ClinicianNoteAdmin(ReadOnlyAdmin):
    list_display = ("consultation", "updated_by_name", "updated_at", "case_page")
    fields = ("case_page", "consultation", "text", "updated_by_name", "updated_at")
    readonly_fields = fields

    @admin.display(description="Case page")
    def case_page(self, note: ClinicianNote) -> str:
        return workspace_link(note.consultation_id, anchor="#note-title")


@admin.register(ClinicianUrgency)
class ClinicianUrgencyAdmin(ReadOnlyAdmin):
    list_display = ("consultation", "urgency", "set_by_name", "set_at", "case_page")
    list_filter = ("urgency",)
    fields = ("case_page", "consultation", "urgency", "reason", "set_by_name", "set_at")
    readonly_fields = fields

    @admin.display(description="Case page")
    def case_page(self, urgency: ClinicianUrgency) -> str:
        return workspace_link(urgency.consultation_id, anchor="#urgency-title")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_name", "action", "consultation", "entity", "entity_review")
    list_filter = ("action",)
    search_fields = ("actor_name", "consultation__id")


@admin.register(EntityReview)
class EntityReviewAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "type", "text", "assertion", "reviewed_by", "updated_at")
    list_filter = ("status", "type")


@admin.register(ConsultationReview)
class ConsultationReviewAdmin(ReadOnlyAdmin):
    list_display = ("consultation", "reviewed_by", "reviewed_at")


# File-backed pages: installed models and triage rules -------------------------------------------------


class FileBackedAdmin(ReadOnlyAdmin):
    """An admin entry whose list page reads files; the model behind it has no table."""

    change_list_template_name = ""

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [path("", self.admin_site.admin_view(self.changelist_view), name="%s_%s_changelist" % info)]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": self.model._meta.verbose_name_plural.capitalize(), **self.page_context(request)}
        return TemplateResponse(request, self.change_list_template_name, context)

    def page_context(self, request) -> dict:
        raise NotImplementedError


@admin.register(NerModelCard)
class NerModelAdmin(FileBackedAdmin):
    change_list_template_name = "admin/consult/ner_models.html"

    def page_context(self, request) -> dict:
        return {"models": model_registry.ner_models_installed(), "configured": settings.NER_MODEL}


@admin.register(TriageRuleEntry)
class TriageRuleAdmin(FileBackedAdmin):
    change_list_template_name = "admin/consult/triage_rules.html"

    def page_context(self, request) -> dict:
        knowledge = knowledge_load()
        return {"knowledge": knowledge, "knowledge_dir": str(KNOWLEDGE_DIR),
                "findings": list(knowledge.findings.values()), "sources": list(knowledge.sources.values())}
