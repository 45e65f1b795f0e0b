"""REST endpoints of the clinician workspace, prompt templates and the integrators' extraction API.

Thin: input through serializers, work in consult.review / consult.case / consult.fhir /
consult.prompt_templates / consult.extraction.
"""
from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from consult import access, case, extraction, fhir, prompt_templates, review, services
from consult.api.authentication import PatientTokenAuthentication
from consult.api.clinician_permissions import (
    IsClinician,
    IsClinicianOrPatient,
    IsTemplateAdminOrClinicianReadOnly,
    MayExtract,
)
from consult.api.clinician_serializers import (
    CaseFilterSerializer,
    CaseListItemSerializer,
    ClinicianNoteSerializer,
    ClinicianUrgencySerializer,
    ExtractRequestSerializer,
    ExtractResponseSerializer,
    PatientDetailsSerializer,
    PromptTemplateSerializer,
    PromptTemplateVersionSerializer,
    ReviewActionSerializer,
    ReviewedSerializer,
    RevertSerializer,
)
from consult.extraction import TemplateError
from consult.models import Consultation, PromptTemplate

# Token first, so that an anonymous request is answered 401 with a WWW-Authenticate challenge.
AUTHENTICATION = [TokenAuthentication, PatientTokenAuthentication, SessionAuthentication]


class ClinicianApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsClinician]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "clinician"


class CasePagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100


def consultation_for_request(*, request: Request, consultation_id) -> Consultation:
    """Clinicians open any consultation; a patient token only its own (404 for any other)."""
    if access.user_is_clinician(user=request.user):
        return get_object_or_404(Consultation.objects.select_related("review"), pk=consultation_id)
    if isinstance(request.auth, Consultation) and request.auth.pk == consultation_id:
        return request.auth
    raise Http404


class CaseListApi(generics.ListAPIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsClinician]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "clinician"
    serializer_class = CaseListItemSerializer
    pagination_class = CasePagination

    @extend_schema(parameters=[CaseFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = CaseFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return case.consultation_list(filters=case.CaseFilters(**filters.validated_data))


class CaseDetailApi(ClinicianApi):
    @extend_schema(responses=OpenApiTypes.OBJECT,
                   description="The case: messages with annotations, reviewed record, triage path, summary, audit.")
    def get(self, request: Request, consultation_id) -> Response:
        consultation = consultation_for_request(request=request, consultation_id=consultation_id)
        return Response(case.case_serialize(case=case.case_get(consultation=consultation)))


class ReviewActionApi(ClinicianApi):
    @extend_schema(request=ReviewActionSerializer, responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
    def post(self, request: Request, consultation_id) -> Response:
        consultation = consultation_for_request(request=request, consultation_id=consultation_id)
        serializer = ReviewActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        action = data.pop("action")
        if action == "add":
            annotation = review.entity_add(consultation=consultation, actor=request.user, **data)
            return Response(annotation.to_dict(), status=status.HTTP_201_CREATED)
        data.pop("message_id", None)
        if action.startswith("context_"):
            annotation = review.context_review_apply(
                consultation=consultation, actor=request.user, action=action,
                **{k: v for k, v in data.items() if k in ("entity_id", "review_id", "assertion", "codes_keep",
                                                           "code_term")})
        else:
            annotation = review.entity_review_apply(consultation=consultation, actor=request.user,
                                                    action=action, **data)
        return Response(annotation.to_dict())


class CaseUrgencyApi(ClinicianApi):
    @extend_schema(request=ClinicianUrgencySerializer, responses=OpenApiTypes.OBJECT,
                   description="Set the consultation's urgency as a clinician (audited); the patient's page shows it "
                               "with the reason. 400 {\"detail\"} for an unknown level or an empty reason.")
    def put(self, request: Request, consultation_id) -> Response:
        consultation = consultation_for_request(request=request, consultation_id=consultation_id)
        serializer = ClinicianUrgencySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        urgency = review.clinician_urgency_save(consultation=consultation, actor=request.user,
                                                **serializer.validated_data)
        return Response(case.clinician_urgency_serialize(urgency=urgency))


class CasePatientApi(ClinicianApi):
    @extend_schema(request=PatientDetailsSerializer, responses=OpenApiTypes.OBJECT,
                   description="Set the patient's age and sex as a clinician (audited); null falls back to the "
                               "interview's answer.")
    def put(self, request: Request, consultation_id) -> Response:
        consultation = consultation_for_request(request=request, consultation_id=consultation_id)
        serializer = PatientDetailsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        review.patient_details_save(consultation=consultation, actor=request.user, **serializer.validated_data)
        return Response(case.patient_details(consultation=consultation).to_dict())


class CaseReviewedApi(ClinicianApi):
    @extend_schema(request=ReviewedSerializer, responses=ReviewedSerializer)
    def put(self, request: Request, consultation_id) -> Response:
        consultation = consultation_for_request(request=request, consultation_id=consultation_id)
        serializer = ReviewedSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        mark = review.consultation_review_mark(consultation=consultation, actor=request.user,
                                               reviewed=serializer.validated_data["reviewed"])
        return Response({"reviewed": mark is not None})


class CaseNoteApi(ClinicianApi):
    @extend_schema(request=ClinicianNoteSerializer, responses=ClinicianNoteSerializer,
                   description="Set the clinician's free-text note on the case (audited; in the summary and the "
                               "FHIR export). 400 {\"detail\"} when it is too long.")
    def put(self, request: Request, consultation_id) -> Response:
        consultation = consultation_for_request(request=request, consultation_id=consultation_id)
        serializer = ClinicianNoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = review.clinician_note_save(consultation=consultation, actor=request.user,
                                          text=serializer.validated_data["text"])
        return Response({"text": note.text})


class CaseFhirApi(ClinicianApi):
    permission_classes = [IsClinicianOrPatient]

    @extend_schema(responses=OpenApiTypes.OBJECT, description="A FHIR R4 Bundle (collection) of the reviewed case.")
    def get(self, request: Request, consultation_id) -> Response:
        consultation = consultation_for_request(request=request, consultation_id=consultation_id)
        bundle = fhir.consultation_fhir_bundle(case=case.case_get(consultation=consultation))
        return Response(bundle, content_type="application/fhir+json")


# Prompt templates ----------------------------------------------------------------------------------------


class TemplateApiMixin:
    authentication_classes = AUTHENTICATION
    permission_classes = [IsTemplateAdminOrClinicianReadOnly]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "clinician"
    serializer_class = PromptTemplateSerializer
    queryset = PromptTemplate.objects.order_by("entity_type")


class TemplateListApi(TemplateApiMixin, generics.ListCreateAPIView):
    pagination_class = CasePagination


class TemplateDetailApi(TemplateApiMixin, generics.RetrieveUpdateDestroyAPIView):
    def perform_destroy(self, instance: PromptTemplate) -> None:
        # Through the service: the version history stays, with a last version saying who deleted it.
        prompt_templates.prompt_template_delete(template=instance, actor=self.request.user)


class TemplateVersionsApi(TemplateApiMixin, generics.ListAPIView):
    serializer_class = PromptTemplateVersionSerializer
    pagination_class = CasePagination

    def get_queryset(self):
        template = get_object_or_404(PromptTemplate, pk=self.kwargs["pk"])
        return template.versions.order_by("-version")


class TemplateRevertApi(TemplateApiMixin, APIView):
    @extend_schema(request=RevertSerializer, responses=PromptTemplateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        template = get_object_or_404(PromptTemplate, pk=pk)
        serializer = RevertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            template = prompt_templates.prompt_template_revert(
                template=template, version=serializer.validated_data["version"], actor=request.user
            )
        except TemplateError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(PromptTemplateSerializer(template).data)


# Extraction ---------------------------------------------------------------------------------------------


class ExtractApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [MayExtract]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "extract"

    @extend_schema(request=ExtractRequestSerializer, responses=ExtractResponseSerializer)
    def post(self, request: Request) -> Response:
        serializer = ExtractRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reason = extraction.model_unavailable_reason()
        if reason is not None:
            return Response({"detail": "The extraction model is not available."},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        # Same templates as the workers use, so integrators get what patients' messages get.
        services.prompt_templates_sync()
        results = extraction.texts_extract(texts=serializer.validated_data["texts"])
        return Response({
            "model_version": results[0].model_version if results else "",
            "template_version": results[0].template_version if results else "",
            "results": [{"entities": result.entities} for result in results],
        })
