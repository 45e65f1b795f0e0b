"""OpenAPI descriptions for parts drf-spectacular cannot infer: the patient token scheme and the patient
endpoints (plain APIViews). Imported by consult.api.urls, so it is loaded before any schema is built."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers

from consult.api.serializers import MessageCreateSerializer


class PatientTokenScheme(OpenApiAuthenticationExtension):
    target_class = "consult.api.authentication.PatientTokenAuthentication"
    name = "patientToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "The patient token returned once by POST /api/consultations/."}


class ConsultationCreateSchema(OpenApiViewExtension):
    target_class = "consult.api.patient.ConsultationCreateApi"

    def view_replacement(self):
        @extend_schema_view(post=extend_schema(request=None, responses={201: inline_serializer(
            name="ConsultationCreated",
            fields={"id": serializers.UUIDField(), "patient_token": serializers.CharField()},
        )}))
        class Described(self.target_class):
            pass

        return Described


class ConsultationDetailSchema(OpenApiViewExtension):
    target_class = "consult.api.patient.ConsultationDetailApi"

    def view_replacement(self):
        @extend_schema_view(get=extend_schema(responses=OpenApiTypes.OBJECT,
                                              description="The consultation state the patient's page shows."))
        class Described(self.target_class):
            pass

        return Described


class MessageCreateSchema(OpenApiViewExtension):
    target_class = "consult.api.patient.MessageCreateApi"

    def view_replacement(self):
        @extend_schema_view(post=extend_schema(request=MessageCreateSerializer, responses={202: inline_serializer(
            name="MessageAccepted", fields={"id": serializers.IntegerField(), "status": serializers.CharField()},
        )}))
        class Described(self.target_class):
            pass

        return Described
