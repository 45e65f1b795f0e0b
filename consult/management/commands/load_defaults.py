"""Idempotent first-run data: the clinician group, demo accounts and the prompt template table."""
from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from consult import extraction
# Accounts of systems that call POST /api/extract with a DRF token; they see no consultations.
from consult.access import INTEGRATOR_GROUP
from consult.models import PromptTemplate
from consult.vocabulary import DEMO_ACCOUNTS

CLINICIAN_PERMISSIONS = [
    "view_consultation",
    "view_message",
    "view_recorditem",
    "view_triageevent",
    "view_entity",
    "view_prompttemplate",
    "view_entityreview",
    "view_auditevent",
    "view_consultationreview",
    "view_triageruleentry",
    "view_nermodelcard",
]



class Command(BaseCommand):
    help = "Create the clinician group, demo accounts (clinician, admin) and seed prompt templates. Safe to rerun."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        group, _ = Group.objects.get_or_create(name="clinician")
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="consult", codename__in=CLINICIAN_PERMISSIONS)
        )

        Group.objects.get_or_create(name=INTEGRATOR_GROUP)

        User = get_user_model()
        for username, password_env, superuser in DEMO_ACCOUNTS:
            user, created = User.objects.get_or_create(username=username)
            password = os.environ.get(password_env, "")
            if created or password:
                if not password:
                    password = secrets.token_urlsafe(12)
                    self.stdout.write(f"Created user {username!r} with password: {password}")
                else:
                    self.stdout.write(f"Set password of user {username!r} from {password_env}")
                user.set_password(password)
            user.is_staff = True
            user.is_superuser = superuser
            user.save()
            user.groups.add(group)

        seeded = 0
        for entity_type, spec in extraction.default_templates().items():
            anchor = spec.get("anchor")
            _, created = PromptTemplate.objects.get_or_create(
                entity_type=entity_type,
                defaults={
                    "text": spec.get("template", ""),
                    "anchor_words": [anchor] if anchor else [],
                    "soft_prompt_length": spec.get("soft_prompt_length", 8),
                    # Seeded rows mirror the model's built-in templates; an admin activates an override.
                    "is_active": False,
                },
            )
            seeded += created
        self.stdout.write(self.style.SUCCESS(f"Defaults loaded ({seeded} prompt templates added)."))
