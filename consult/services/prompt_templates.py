"""Admin-edited prompt templates: validation, versioned saves, reverts and deletes.

Every save that changes something raises `PromptTemplate.version`. Workers compare the combined version
of the active templates (`selectors.prompt_templates.prompt_templates_active`) before each message and rebuild their
queries when it changed, so an edit takes effect on the next task without a restart.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction

from consult import extraction
from consult.extraction import MAX_TEMPLATE_TOKENS, QueryTemplate, TemplateError, template_validate
from consult.models import PromptTemplate, PromptTemplateVersion
from consult.selectors.prompt_templates import prompt_templates_active
from consult.services.audit import actor_name
from consult.vocabulary import REVIEW_TYPES

VERSIONED_FIELDS = ("text", "anchor_words", "soft_prompt_length", "is_active")


def entity_types_known() -> tuple[str, ...]:
    return tuple(dict.fromkeys([*REVIEW_TYPES, *extraction.default_templates()]))


def prompt_template_validate(*, entity_type: str, text: str, anchor_words: Any, soft_prompt_length: int) -> None:
    """Raise TemplateError (message fit for a form) unless the extractor could use this template.

    Uses the extractor's tokenizer for the length limit when the model is installed; otherwise a lower
    bound (one token per word) still catches templates that can never fit.
    """
    if entity_type not in entity_types_known():
        raise TemplateError(f"Unknown entity type {entity_type!r}; known: {', '.join(entity_types_known())}")
    if not isinstance(anchor_words, list) or not all(isinstance(w, str) and w.strip() for w in anchor_words):
        raise TemplateError("Anchor words must be a list of non-empty words, e.g. [\"symptom\"].")
    if not anchor_words:
        raise TemplateError(f"{entity_type}: the anchor words are empty")
    # The extractor fills {anchor} with the first anchor word; the others document synonyms.
    template = QueryTemplate(type=entity_type, anchor=anchor_words[0], template=text,
                             soft_prompt_length=int(soft_prompt_length))
    tokenizer = extraction.template_tokenizer()
    template_validate(template, tokenizer=tokenizer)
    if tokenizer is None:
        words = len(template.hard_text().split())
        if words + template.soft_prompt_length > MAX_TEMPLATE_TOKENS:
            raise TemplateError(f"{entity_type}: the template has {words} words; at most "
                                f"{MAX_TEMPLATE_TOKENS - template.soft_prompt_length} tokens leave room for the text")


def template_error_field(*, error: TemplateError) -> str:
    """The form field a TemplateError is about, so that forms show it next to the right input."""
    message = str(error).lower()
    if "entity type" in message or "exists already" in message:
        return "entity_type"
    if "anchor" in message and "placeholder" not in message:
        return "anchor_words"
    if "soft prompt" in message:
        return "soft_prompt_length"
    return "text"


def _version_record(*, template: PromptTemplate, actor, note: str) -> PromptTemplateVersion:
    return PromptTemplateVersion.objects.create(
        template=template, entity_type=template.entity_type, version=template.version, text=template.text, anchor_words=list(template.anchor_words),
        soft_prompt_length=template.soft_prompt_length, is_active=template.is_active,
        changed_by=actor if actor_name(actor) else None, changed_by_name=actor_name(actor), note=note,
    )


def prompt_template_save(*, template: PromptTemplate | None, actor, entity_type: str | None = None,
                         note: str = "", **values: Any) -> PromptTemplate:
    """Create a template or change one; validated, versioned, and recorded in its history.

    `values` are any of text, anchor_words, soft_prompt_length, is_active; a save that changes nothing
    keeps the version. Raises TemplateError for an unusable template.
    """
    unknown = set(values) - set(VERSIONED_FIELDS)
    if unknown:
        raise TypeError(f"unknown template fields: {sorted(unknown)}")
    with transaction.atomic():
        if template is None or template.pk is None:
            template = PromptTemplate(entity_type=entity_type or (template.entity_type if template else ""))
            if PromptTemplate.objects.filter(entity_type=template.entity_type).exists():
                raise TemplateError(f"A template for entity type {template.entity_type} exists already; edit that one.")
            created = True
        else:
            template = PromptTemplate.objects.select_for_update().get(pk=template.pk)
            created = False
            if not template.versions.exists():
                # Rows seeded before versioning existed: keep their first state so that it can be restored.
                _version_record(template=template, actor=None, note="state before the first recorded edit")
        changed = [name for name, value in values.items() if getattr(template, name) != value]
        for name in changed:
            setattr(template, name, values[name])
        prompt_template_validate(entity_type=template.entity_type, text=template.text,
                                 anchor_words=template.anchor_words, soft_prompt_length=template.soft_prompt_length)
        if not created and not changed:
            return template
        if not created:
            template.version += 1
        template.save()
        _version_record(template=template, actor=actor,
                        note=note or ("created" if created else "changed " + ", ".join(changed)))
    return template


def prompt_template_revert(*, template: PromptTemplate, version: int, actor) -> PromptTemplate:
    """Restore an earlier version's values as a new version (history is never rewritten)."""
    earlier = PromptTemplateVersion.objects.filter(template=template, version=version).first()
    if earlier is None:
        raise TemplateError(f"{template.entity_type} has no version {version}.")
    return prompt_template_save(
        template=template, actor=actor, note=f"reverted to version {version}",
        text=earlier.text, anchor_words=list(earlier.anchor_words),
        soft_prompt_length=earlier.soft_prompt_length, is_active=earlier.is_active,
    )


def prompt_template_delete(*, template: PromptTemplate, actor, note: str = "") -> None:
    """Delete a template and keep its history: a last version records who deleted it and when (inactive: the
    model's shipped template applies again), and every version row stays, with `template` empty and
    `entity_type` naming it. A template for the same entity type may then be created anew (from version 1)."""
    with transaction.atomic():
        template = PromptTemplate.objects.select_for_update().get(pk=template.pk)
        if not template.versions.exists():
            _version_record(template=template, actor=None, note="state before the first recorded edit")
        template.version += 1
        template.is_active = False
        _version_record(template=template, actor=actor, note=note or "deleted")
        template.delete()  # PromptTemplateVersion.template is SET_NULL: the rows stay


def prompt_templates_sync() -> None:
    overrides, version = prompt_templates_active()
    extraction.templates_apply(overrides=overrides, version=version)
