"""Prompt templates as the workers and the admin read them: the active set and each template's history."""
from __future__ import annotations

from consult.extraction import BUILTIN_TEMPLATE_VERSION
from consult.models import PromptTemplate, PromptTemplateVersion

def prompt_templates_active() -> tuple[dict[str, dict[str, str]], str]:
    """Active admin overrides as {entity type: {"template", "anchor"?}} and a version naming that set."""
    templates = list(PromptTemplate.objects.filter(is_active=True).order_by("entity_type"))
    overrides: dict[str, dict[str, str]] = {}
    for template in templates:
        override = {"template": template.text}
        if template.anchor_words:
            override["anchor"] = str(template.anchor_words[0])
        overrides[template.entity_type] = override
    version = "+".join(f"{template.entity_type}.{template.version}" for template in templates)
    return overrides, version or BUILTIN_TEMPLATE_VERSION


def prompt_template_history(*, entity_type: str) -> list[PromptTemplateVersion]:
    """Every recorded version for an entity type, deleted templates' included, newest first."""
    return list(PromptTemplateVersion.objects.filter(entity_type=entity_type).order_by("-changed_at", "-id"))



def prompt_template_versions(*, template: PromptTemplate) -> list[PromptTemplateVersion]:
    return list(template.versions.order_by("-version"))
