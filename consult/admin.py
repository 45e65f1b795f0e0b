from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from consult import model_registry, prompt_templates
from consult.models import (
    AuditEvent,
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
from ner_engine.triplets import TemplateError


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
class ConsultationAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "urgency", "created_at", "updated_at")
    list_filter = ("status", "urgency")
    readonly_fields = ("id", "created_at", "updated_at", "triage_state")
    exclude = ("token_hash",)
    inlines = [RecordItemInline, TriageEventInline, MessageInline]


class EntityInline(admin.TabularInline):
    model = Entity
    fields = ("type", "text", "start", "end", "score", "assertion", "review_status", "record_item")
    readonly_fields = ("type", "text", "start", "end", "score", "assertion", "review_status", "record_item")
    extra = 0
    can_delete = False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "consultation", "role", "status", "created_at", "processed_at")
    list_filter = ("role", "status")
    readonly_fields = ("consultation", "role", "text", "reply_to", "created_at", "processed_at",
                       "model_version", "template_version")
    inlines = [EntityInline]


@admin.register(Entity)
class EntityAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "text", "score", "review_status", "message")
    list_filter = ("type", "review_status")
    # Verdicts are given in the clinician workspace, which keeps the audit trail; not editable here.
    readonly_fields = ("message", "record_item", "type", "text", "start", "end", "score",
                       "model_version", "template_version", "review_status")


# Prompt templates -----------------------------------------------------------------------------------


class PromptTemplateForm(forms.ModelForm):
    class Meta:
        model = PromptTemplate
        fields = ("entity_type", "text", "anchor_words", "soft_prompt_length", "is_active")
        help_texts = {
            "anchor_words": 'A JSON list, e.g. ["symptom", "complaint"]; the first fills {anchor}.',
            "soft_prompt_length": "Learned prompt vectors per query (0-32). Used when training a model from "
                                  "these templates; a running model keeps the length it was trained with.",
        }

    def clean(self):
        cleaned = super().clean()
        entity_type = cleaned.get("entity_type") or getattr(self.instance, "entity_type", "")
        if self.errors:
            return cleaned
        try:
            prompt_templates.prompt_template_validate(
                entity_type=entity_type, text=cleaned.get("text", ""), anchor_words=cleaned.get("anchor_words"),
                soft_prompt_length=cleaned.get("soft_prompt_length", 0),
            )
        except TemplateError as error:
            raise ValidationError({prompt_templates.template_error_field(error=error): str(error)}) from None
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
    readonly_fields = ("version", "updated_at")
    inlines = [PromptTemplateVersionInline]

    def get_readonly_fields(self, request, obj=None):
        # A template belongs to its entity type; a different type is a different template.
        return (*self.readonly_fields, "entity_type") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change) -> None:
        # Saved through the service: it versions the change and records who made it. Workers compare
        # versions before each message, so the edit takes effect on their next task.
        values = {name: form.cleaned_data[name] for name in prompt_templates.VERSIONED_FIELDS
                  if name in form.cleaned_data}
        saved = prompt_templates.prompt_template_save(
            template=obj if change else None, actor=request.user, entity_type=obj.entity_type, **values
        )
        obj.pk, obj.version, obj.updated_at = saved.pk, saved.version, saved.updated_at

    def get_urls(self):
        return [
            path("<int:template_id>/revert/<int:version>/", self.admin_site.admin_view(self.revert_view),
                 name="consult_prompttemplate_revert"),
            *super().get_urls(),
        ]

    def revert_view(self, request, template_id: int, version: int):
        template = get_object_or_404(PromptTemplate, pk=template_id)
        if not self.has_change_permission(request, template):
            raise PermissionDenied
        earlier = get_object_or_404(PromptTemplateVersion, template=template, version=version)
        if request.method == "POST":
            try:
                saved = prompt_templates.prompt_template_revert(template=template, version=version,
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


# Review records (read-only: written by the clinician workspace) --------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
        from django.conf import settings

        return {"models": model_registry.ner_models_installed(), "configured": settings.NER_MODEL}


@admin.register(TriageRuleEntry)
class TriageRuleAdmin(FileBackedAdmin):
    change_list_template_name = "admin/consult/triage_rules.html"

    def page_context(self, request) -> dict:
        import json

        from consult.triage import TriageEngine
        from consult.triage.engine import RULES_PATH

        engine = TriageEngine.default()
        rules = [
            {"id": rule.id, "kind": rule.kind, "description": rule.description, "urgency": rule.urgency,
             "slot": rule.slot, "text": rule.text or rule.advice or "",
             "source": json.dumps(dict(rule.source), indent=2, ensure_ascii=False)}
            for rule in engine.rules
        ]
        return {"rules": rules, "rules_path": str(RULES_PATH), "urgency_advice": engine.urgency_advice,
                "stop_questions_at": engine.stop_questions_at}
