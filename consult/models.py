"""Consultation data: what the patient said, what the extractor found, and what the triage decided."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from consult.vocabulary import URGENCY_LABELS


class Urgency(models.TextChoices):
    """Five levels, most urgent first; `rank` orders them so that urgency can only rise."""

    # Values and labels from consult.vocabulary, the one definition.
    EMERGENCY_AMBULANCE = "emergency_ambulance", URGENCY_LABELS["emergency_ambulance"]
    EMERGENCY = "emergency", URGENCY_LABELS["emergency"]
    CONSULTATION_24 = "consultation_24", URGENCY_LABELS["consultation_24"]
    CONSULTATION = "consultation", URGENCY_LABELS["consultation"]
    SELF_CARE = "self_care", URGENCY_LABELS["self_care"]

    @classmethod
    def rank(cls, value: str | None) -> int:
        """Higher is more urgent; None (not yet assessed) ranks below every level."""
        if value is None:
            return -1
        order = [choice.value for choice in cls]
        return len(order) - order.index(value)


# The interview's values of the patient's sex (consult.triage.evidence.sex_read).
SEX_CHOICES = [("female", "Female"), ("male", "Male")]


class Consultation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # SHA-256 of the patient's bearer token; the token itself is shown to the patient once and never stored.
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    urgency = models.CharField(max_length=32, choices=Urgency.choices, null=True, blank=True)
    summary = models.TextField(blank=True, default="")
    # The interview's state (consult.services.consultation_triage): {"answered": {message id: question id},
    # "asked": {message id: the question asked after it}, "pending_question": {"id", "text"} | None,
    # "decision": TriageDecision.to_dict()}
    triage_state = models.JSONField(default=dict, blank=True)
    # The patient's age (years; fractions for babies) and sex as a clinician set them (review.patient_details_save,
    # audited). Null/empty: the interview's answer applies (case.patient_details).
    age = models.FloatField(null=True, blank=True)
    sex = models.CharField(max_length=16, choices=SEX_CHOICES, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Consultation {self.id} ({self.status})"

    @property
    def group_name(self) -> str:
        return f"consultation_{self.id.hex}"


class Message(models.Model):
    class Role(models.TextChoices):
        PATIENT = "patient", "Patient"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True, default="")
    # The patient message an assistant reply answers; one reply per patient message, so that
    # reprocessing a message rewrites its reply instead of adding a second one.
    reply_to = models.OneToOneField(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="reply"
    )
    model_version = models.CharField(max_length=128, blank=True, default="")
    template_version = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["consultation", "created_at"])]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk} ({self.status})"


# A record item's key: how repeated mentions of one finding are told to be the same (live and reviewed record).
RECORD_KEY_MAX_CHARS = 255
# Edge characters that are never part of what a record item is ("headache." == "Headache").
RECORD_KEY_TRIM = " \t\r\n.,;:!?\"'()[]{}"


def record_key_normalize(*, text: str) -> str:
    return " ".join(text.casefold().split()).strip(RECORD_KEY_TRIM)[:RECORD_KEY_MAX_CHARS]


class RecordItem(models.Model):
    """One fact in the consultation record; repeated mentions of the same thing share one item."""

    class Type(models.TextChoices):
        SYMPTOM = "SYMPTOM", "Symptom"
        DISEASE = "DISEASE", "Disease"
        DRUG = "DRUG", "Drug"

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="record_items")
    type = models.CharField(max_length=16, choices=Type.choices)
    # Case- and whitespace-normalised text: the merge key.
    key = models.CharField(max_length=255)
    # The surface text as the patient first wrote it, for display.
    text = models.CharField(max_length=255)
    first_seen_message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)
    assertion = models.CharField(max_length=32, null=True, blank=True)

    class Meta:
        ordering = ["first_seen_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["consultation", "type", "key"], name="record_item_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.type}: {self.text}"


class Entity(models.Model):
    """One mention found by the extractor in one patient message."""

    class ReviewStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        CORRECTED = "corrected", "Corrected"
        REJECTED = "rejected", "Rejected"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="entities")
    # Null for types that are not part of the record (ANATOMY, DURATION, SEVERITY).
    record_item = models.ForeignKey(
        RecordItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="mentions"
    )
    type = models.CharField(max_length=16)
    text = models.TextField()
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    score = models.FloatField()
    model_version = models.CharField(max_length=128, blank=True, default="")
    template_version = models.CharField(max_length=128, blank=True, default="")
    review_status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    # Filled by later stages (negation/assertion detection, terminology coding).
    assertion = models.CharField(max_length=32, null=True, blank=True)
    code = models.CharField(max_length=64, null=True, blank=True)
    code_system = models.CharField(max_length=64, null=True, blank=True)
    attributes = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["message_id", "start", "end"]
        verbose_name_plural = "entities"

    def __str__(self) -> str:
        return f"{self.type} '{self.text}' [{self.start}:{self.end}]"


class TriageEvent(models.Model):
    """Which rule fired and why: every triage decision is explainable after the fact."""

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="triage_events")
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="triage_events"
    )
    rule_id = models.CharField(max_length=128)
    reason = models.TextField()
    urgency = models.CharField(max_length=32, choices=Urgency.choices, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.rule_id} -> {self.urgency}"


class PromptTemplate(models.Model):
    """An administrator's override of the extractor's query template for one entity type."""

    entity_type = models.CharField(max_length=16, unique=True)
    text = models.TextField(help_text="Hard template text; {anchor} is replaced by the anchor word.")
    anchor_words = models.JSONField(default=list, blank=True)
    soft_prompt_length = models.PositiveSmallIntegerField(default=8)
    is_active = models.BooleanField(
        default=False, help_text="Only active templates override the model's built-in ones."
    )
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["entity_type"]

    def __str__(self) -> str:
        return f"{self.entity_type} v{self.version}{'' if self.is_active else ' (inactive)'}"


# Clinician review -------------------------------------------------------------------------------------
# Review state lives beside the extractor's Entity rows, never in them: the model's output stays what the
# model said, so that corrections can be exported as training data and model versions compared.


class EntityReview(models.Model):
    """A clinician's verdict on one mention: on an extracted Entity, or a mention the model missed."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        CORRECTED = "corrected", "Corrected"
        ADDED = "added", "Added by a clinician"

    class ContextState(models.TextChoices):
        MODEL = "", "The model's values"
        PROPOSED = "proposed", "Recomputed, awaiting the clinician"
        CONFIRMED = "confirmed", "Recomputed, accepted by the clinician"
        EDITED = "edited", "Edited by the clinician"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="entity_reviews")
    # Null for a mention the model missed (status "added").
    entity = models.OneToOneField(Entity, on_delete=models.CASCADE, null=True, blank=True, related_name="review")
    status = models.CharField(max_length=16, choices=Status.choices)
    # The reviewed values; for an accepted entity they equal the model's.
    type = models.CharField(max_length=16)
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    text = models.TextField()
    assertion = models.CharField(max_length=32, null=True, blank=True)
    # Clinical context recomputed for the reviewed span and type (ner_engine.context's shape: {"assertion",
    # "attributes", "codes"}), when a correction changed the span or type or the mention was added. Null: the
    # model's Entity.attributes and codes still apply.
    attributes = models.JSONField(null=True, blank=True)
    context_state = models.CharField(max_length=16, choices=ContextState.choices, blank=True, default="")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["message_id", "start", "end", "id"]

    def __str__(self) -> str:
        return f"{self.status} {self.type} '{self.text}' [{self.start}:{self.end}]"


class ConsultationReview(models.Model):
    """Present once a clinician has marked the consultation reviewed; only those are exported for training."""

    consultation = models.OneToOneField(Consultation, on_delete=models.CASCADE, related_name="review")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Review of {self.consultation_id}"


class ClinicianNote(models.Model):
    """A clinician's free-text note on a consultation; every change is an AuditEvent (action "note_edit")."""

    consultation = models.OneToOneField(Consultation, on_delete=models.CASCADE, related_name="clinician_note")
    text = models.TextField(blank=True, default="")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_by_name = models.CharField(max_length=150, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Note on {self.consultation_id}"


class ClinicianUrgency(models.Model):
    """The urgency a clinician set for a consultation, with the reason the patient reads; it stands beside the
    interview's `Consultation.urgency`, which is never overwritten. Every change is an AuditEvent (action
    "urgency_override")."""

    consultation = models.OneToOneField(Consultation, on_delete=models.CASCADE, related_name="clinician_urgency")
    urgency = models.CharField(max_length=32, choices=Urgency.choices)
    reason = models.TextField()
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    set_by_name = models.CharField(max_length=150, blank=True, default="")
    set_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "clinician urgency"
        verbose_name_plural = "clinician urgencies"

    def __str__(self) -> str:
        return f"{self.urgency} for {self.consultation_id}"


class AuditEvent(models.Model):
    """Who changed what in a consultation's review, when, and the values before and after."""

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept as text too: the trail must still say who acted after the account is deleted.
    actor_name = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=32)
    entity = models.ForeignKey(Entity, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    entity_review = models.ForeignKey(
        EntityReview, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_events"
    )
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} {self.action} at {self.created_at:%Y-%m-%d %H:%M}"


class PromptTemplateVersion(models.Model):
    """Every saved state of a prompt template, so that an admin can see who changed what and revert.

    The history outlives its template: deleting a template (prompt_templates.prompt_template_delete) records
    a last "deleted" version and leaves these rows with `template` empty and `entity_type` naming it.
    """

    template = models.ForeignKey(PromptTemplate, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="versions")
    # The template's key, kept so that the rows still say whose history they are once it is deleted.
    entity_type = models.CharField(max_length=16, blank=True, default="")
    version = models.PositiveIntegerField()
    text = models.TextField()
    anchor_words = models.JSONField(default=list, blank=True)
    soft_prompt_length = models.PositiveSmallIntegerField()
    is_active = models.BooleanField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_by_name = models.CharField(max_length=150, blank=True, default="")
    changed_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["template_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["template", "version"], name="prompt_template_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} v{self.version}{'' if self.template_id else ' (template deleted)'}"


# Admin-only pages without tables of their own: registering them puts "NER models" and "Triage rules" in
# the admin index with Django's usual permissions; their admin views read files, not the database.


class NerModelCard(models.Model):
    class Meta:
        managed = False
        verbose_name = "NER model"
        verbose_name_plural = "NER models"


class TriageRuleEntry(models.Model):
    class Meta:
        managed = False
        verbose_name = "triage rule"
        verbose_name_plural = "triage rules"
