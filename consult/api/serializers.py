"""Input validation and output shapes of the API; business rules live in services (the serializers never write)."""
from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from consult.models import Consultation, PromptTemplate, PromptTemplateVersion, Urgency
from consult.services.messages import MessageRejected, message_text_validate
from consult.vocabulary import ASSERTIONS, REVIEW_TYPES


class MessageCreateSerializer(serializers.Serializer):
    # No trimming or length cap here: message_text_validate is the one rule for the API
    # and the websocket alike.
    text = serializers.CharField(trim_whitespace=False, allow_blank=True)

    def validate_text(self, value: str) -> str:
        try:
            return message_text_validate(text=value)
        except MessageRejected as rejected:
            raise serializers.ValidationError(rejected.message, code=rejected.code) from None

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"detail": 'Expected a JSON object such as {"text": "..."}.'})
        return super().to_internal_value(data)


class CaseFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Consultation.Status.choices, required=False)
    urgency = serializers.ChoiceField(choices=Urgency.choices, required=False)
    reviewed = serializers.BooleanField(required=False, allow_null=True, default=None)
    created_from = serializers.DateField(required=False)
    created_to = serializers.DateField(required=False)


class CaseListItemSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    urgency = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    red_flag_count = serializers.IntegerField()
    patient_message_count = serializers.IntegerField()
    reviewed = serializers.SerializerMethodField()

    def get_reviewed(self, consultation) -> bool:
        return getattr(consultation, "review", None) is not None


class ReviewActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["accept", "reject", "correct", "add", "context_accept", "context_edit"],
        help_text="context_accept: confirm the assertion and codes proposed for a corrected or added mention; "
                  "context_edit: set the assertion, keep some codes (codes_keep) or code from a term (code_term).")
    entity_id = serializers.IntegerField(required=False, help_text="A model mention (accept/reject/correct).")
    review_id = serializers.IntegerField(required=False, help_text="A clinician-added mention.")
    message_id = serializers.IntegerField(required=False, help_text="The patient message (add).")
    type = serializers.ChoiceField(choices=REVIEW_TYPES, required=False)
    start = serializers.IntegerField(min_value=0, required=False)
    end = serializers.IntegerField(min_value=0, required=False)
    assertion = serializers.ChoiceField(choices=ASSERTIONS, required=False, allow_null=True)
    codes_keep = serializers.ListField(child=serializers.CharField(), required=False,
                                       help_text='context_edit: the codes to keep, as "SYSTEM|CODE".')
    code_term = serializers.CharField(required=False, allow_blank=True,
                                      help_text="context_edit: code the mention from this term instead.")

    def validate(self, data):
        if not data["action"].startswith("context_") and ({"codes_keep", "code_term"} & set(data)):
            raise serializers.ValidationError("codes_keep and code_term belong to context_edit.")
        if data["action"] == "add":
            missing = [name for name in ("message_id", "type", "start", "end") if name not in data]
            if missing:
                raise serializers.ValidationError({name: "Required to add a mention." for name in missing})
        elif ("entity_id" in data) == ("review_id" in data):
            raise serializers.ValidationError("Give exactly one of entity_id or review_id.")
        return data


class ClinicianNoteSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True, trim_whitespace=True,
                                 help_text="The clinician's note on the case; empty clears it.")


class ClinicianUrgencySerializer(serializers.Serializer):
    # Plain text, checked by services.review.clinician_urgency_save: an unknown level or an empty reason is answered
    # 400 {"detail": ...} like the other review errors.
    urgency = serializers.CharField(required=False, allow_blank=True, default="",
                                    help_text="One of " + ", ".join(Urgency.values) + ".")
    reason = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=True,
                                   help_text="Required; the patient's page shows it.")


class PatientDetailsSerializer(serializers.Serializer):
    # Checked by services.review.patient_details_save; null clears a value (the interview's answer applies again).
    age = serializers.FloatField(required=False, allow_null=True, default=None, help_text="Years, 0-130.")
    sex = serializers.CharField(required=False, allow_null=True, allow_blank=True, default=None,
                                help_text="female | male; empty or null: the interview's answer.")


class ReviewedSerializer(serializers.Serializer):
    reviewed = serializers.BooleanField()


class PromptTemplateSerializer(serializers.ModelSerializer):
    anchor_words = serializers.ListField(child=serializers.CharField(), allow_empty=False)

    class Meta:
        model = PromptTemplate
        fields = ("id", "entity_type", "text", "anchor_words", "soft_prompt_length", "is_active", "version",
                  "updated_at")
        read_only_fields = ("version", "updated_at")

    def validate_entity_type(self, value: str) -> str:
        if self.instance is not None and value != self.instance.entity_type:
            raise serializers.ValidationError("The entity type of a template cannot change.")
        return value


class PromptTemplateVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PromptTemplateVersion
        fields = ("version", "text", "anchor_words", "soft_prompt_length", "is_active", "changed_by_name",
                  "changed_at", "note")


class RevertSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class ExtractRequestSerializer(serializers.Serializer):
    texts = serializers.ListField(
        child=serializers.CharField(allow_blank=False, max_length=settings.MESSAGE_MAX_CHARS),
        min_length=1,
        max_length=settings.EXTRACT_MAX_TEXTS,
    )


class ExtractedEntitySerializer(serializers.Serializer):
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    type = serializers.CharField()
    text = serializers.CharField()
    score = serializers.FloatField()
    attributes = serializers.DictField()


class ExtractResultSerializer(serializers.Serializer):
    entities = ExtractedEntitySerializer(many=True)


class ExtractResponseSerializer(serializers.Serializer):
    model_version = serializers.CharField()
    template_version = serializers.CharField()
    results = ExtractResultSerializer(many=True)
