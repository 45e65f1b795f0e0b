"""The clinician workspace's case endpoints: the case list, one case, review actions, note, urgency, the patient's
details, the reviewed mark and the FHIR export. Thin: input through serializers, work in services and selectors."""
from __future__ import annotations

from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from consult import access, fhir
from consult.api.authentication import WORKSPACE_AUTHENTICATION
from consult.api.pagination import PagePagination
from consult.api.permissions import IsClinician, IsClinicianOrPatient
from consult.api.serializers import (
    CaseFilterSerializer,
    CaseListItemSerializer,
    ClinicianNoteSerializer,
    ClinicianUrgencySerializer,
    PatientDetailsSerializer,
    ReviewActionSerializer,
    ReviewedSerializer,
)
from consult.models import Consultation
from consult.selectors.case import (
    CaseFilters,
    case_get,
    case_serialize,
    clinician_urgency_serialize,
    consultation_list,
    patient_details,
)
from consult.services.review import (
    clinician_note_save,
    clinician_urgency_save,
    consultation_review_mark,
    context_review_apply,
    entity_add,
    entity_review_apply,
    patient_details_save,
)


class ClinicianApi(APIView):
    authentication_classes = WORKSPACE_AUTHENTICATION
    permission_classes = [IsClinician]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "clinician"


def consultation_for_request(*, request: Request, consultation_id) -> Consultation:
    """Clinicians open any consultation; a patient token only its own (404 for any other)."""
    if access.user_is_clinician(user=request.user):
        return get_object_or_404(Consultation.objects.select_related("review"), pk=consultation_id)
    if isinstance(request.auth, Consultation) and request.auth.pk == consultation_id:
        return request.auth
    raise Http404


def case_input(*, request: Request, consultation_id, serializer_class) -> tuple[Consultation, dict[str, Any]]:
    """The consultation the request may open (404 otherwise) and the request's validated input (400 otherwise)."""
    consultation = consultation_for_request(request=request, consultation_id=consultation_id)
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return consultation, dict(serializer.validated_data)


class CaseListApi(generics.ListAPIView):
    authentication_classes = WORKSPACE_AUTHENTICATION
    permission_classes = [IsClinician]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "clinician"
    serializer_class = CaseListItemSerializer
    pagination_class = PagePagination

    @extend_schema(parameters=[CaseFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = CaseFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return consultation_list(filters=CaseFilters(**filters.validated_data))


class CaseDetailApi(ClinicianApi):
    @extend_schema(responses=OpenApiTypes.OBJECT,
                   description="The case: messages with annotations, reviewed record, triage path, summary, audit.")
    def get(self, request: Request, consultation_id) -> Response:
        consultation = consultation_for_request(request=request, consultation_id=consultation_id)
        return Response(case_serialize(case=case_get(consultation=consultation)))


class ReviewActionApi(ClinicianApi):
    @extend_schema(request=ReviewActionSerializer, responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
    def post(self, request: Request, consultation_id) -> Response:
        consultation, data = case_input(request=request, consultation_id=consultation_id,
                                        serializer_class=ReviewActionSerializer)
        action = data.pop("action")
        if action == "add":
            annotation = entity_add(consultation=consultation, actor=request.user, **data)
            return Response(annotation.to_dict(), status=status.HTTP_201_CREATED)
        data.pop("message_id", None)
        if action.startswith("context_"):
            annotation = context_review_apply(
                consultation=consultation, actor=request.user, action=action,
                **{k: v for k, v in data.items() if k in ("entity_id", "review_id", "assertion", "codes_keep",
                                                           "code_term")})
        else:
            annotation = entity_review_apply(consultation=consultation, actor=request.user,
                                             action=action, **data)
        return Response(annotation.to_dict())


class CaseUrgencyApi(ClinicianApi):
    @extend_schema(request=ClinicianUrgencySerializer, responses=OpenApiTypes.OBJECT,
                   description="Set the consultation's urgency as a clinician (audited); the patient's page shows it "
                               "with the reason. 400 {\"detail\"} for an unknown level or an empty reason.")
    def put(self, request: Request, consultation_id) -> Response:
        consultation, data = case_input(request=request, consultation_id=consultation_id,
                                        serializer_class=ClinicianUrgencySerializer)
        urgency = clinician_urgency_save(consultation=consultation, actor=request.user,
                                         **data)
        return Response(clinician_urgency_serialize(urgency=urgency))


class CasePatientApi(ClinicianApi):
    @extend_schema(request=PatientDetailsSerializer, responses=OpenApiTypes.OBJECT,
                   description="Set the patient's age and sex as a clinician (audited); null falls back to the "
                               "interview's answer.")
    def put(self, request: Request, consultation_id) -> Response:
        consultation, data = case_input(request=request, consultation_id=consultation_id,
                                        serializer_class=PatientDetailsSerializer)
        patient_details_save(consultation=consultation, actor=request.user, **data)
        return Response(patient_details(consultation=consultation).to_dict())


class CaseReviewedApi(ClinicianApi):
    @extend_schema(request=ReviewedSerializer, responses=ReviewedSerializer)
    def put(self, request: Request, consultation_id) -> Response:
        consultation, data = case_input(request=request, consultation_id=consultation_id,
                                        serializer_class=ReviewedSerializer)
        mark = consultation_review_mark(consultation=consultation, actor=request.user,
                                        reviewed=data["reviewed"])
        return Response({"reviewed": mark is not None})


class CaseNoteApi(ClinicianApi):
    @extend_schema(request=ClinicianNoteSerializer, responses=ClinicianNoteSerializer,
                   description="Set the clinician's free-text note on the case (audited; in the summary and the "
                               "FHIR export). 400 {\"detail\"} when it is too long.")
    def put(self, request: Request, consultation_id) -> Response:
        consultation, data = case_input(request=request, consultation_id=consultation_id,
                                        serializer_class=ClinicianNoteSerializer)
        note = clinician_note_save(consultation=consultation, actor=request.user,
                                   text=data["text"])
        return Response({"text": note.text})


class CaseFhirApi(ClinicianApi):
    permission_classes = [IsClinicianOrPatient]

    @extend_schema(responses=OpenApiTypes.OBJECT, description="A FHIR R4 Bundle (collection) of the reviewed case.")
    def get(self, request: Request, consultation_id) -> Response:
        consultation = consultation_for_request(request=request, consultation_id=consultation_id)
        bundle = fhir.consultation_fhir_bundle(case=case_get(consultation=consultation))
        return Response(bundle, content_type="application/fhir+json")
