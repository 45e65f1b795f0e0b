"""Prompt template endpoints: list, create, change, delete (the history is kept), versions and revert. Writes go
through services.prompt_templates (validated, versioned, audited); the serializers only validate the input."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from consult.api.authentication import WORKSPACE_AUTHENTICATION
from consult.api.pagination import PagePagination
from consult.api.permissions import IsTemplateAdminOrClinicianReadOnly
from consult.api.serializers import PromptTemplateSerializer, PromptTemplateVersionSerializer, RevertSerializer
from consult.extraction import TemplateError
from consult.models import PromptTemplate
from consult.selectors.prompt_templates import prompt_template_versions
from consult.services.prompt_templates import (
    prompt_template_delete,
    prompt_template_revert,
    prompt_template_save,
    template_error_field,
)


def _template_save(*, template: PromptTemplate | None, serializer: PromptTemplateSerializer, actor) -> PromptTemplate:
    """Create (`template` None) or change a template from validated input; a TemplateError is a 400 on its field."""
    values = dict(serializer.validated_data)
    entity_type = values.pop("entity_type", None)
    try:
        return prompt_template_save(template=template, actor=actor, entity_type=entity_type, **values)
    except TemplateError as error:
        raise serializers.ValidationError({template_error_field(error=error): [str(error)]}) from None


class TemplateApiMixin:
    authentication_classes = WORKSPACE_AUTHENTICATION
    permission_classes = [IsTemplateAdminOrClinicianReadOnly]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "clinician"
    serializer_class = PromptTemplateSerializer
    queryset = PromptTemplate.objects.order_by("entity_type")


class TemplateListApi(TemplateApiMixin, generics.ListCreateAPIView):
    pagination_class = PagePagination

    def perform_create(self, serializer: PromptTemplateSerializer) -> None:
        serializer.instance = _template_save(template=None, serializer=serializer, actor=self.request.user)


class TemplateDetailApi(TemplateApiMixin, generics.RetrieveUpdateDestroyAPIView):
    def perform_update(self, serializer: PromptTemplateSerializer) -> None:
        serializer.instance = _template_save(template=serializer.instance, serializer=serializer,
                                             actor=self.request.user)

    def perform_destroy(self, instance: PromptTemplate) -> None:
        # Through the service: the version history stays, with a last version saying who deleted it.
        prompt_template_delete(template=instance, actor=self.request.user)


class TemplateVersionsApi(TemplateApiMixin, generics.ListAPIView):
    serializer_class = PromptTemplateVersionSerializer
    pagination_class = PagePagination

    def get_queryset(self):
        return prompt_template_versions(template=get_object_or_404(PromptTemplate, pk=self.kwargs["pk"]))


class TemplateRevertApi(TemplateApiMixin, APIView):
    @extend_schema(request=RevertSerializer, responses=PromptTemplateSerializer)
    def post(self, request: Request, pk: int) -> Response:
        template = get_object_or_404(PromptTemplate, pk=pk)
        serializer = RevertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            template = prompt_template_revert(
                template=template, version=serializer.validated_data["version"], actor=request.user
            )
        except TemplateError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(PromptTemplateSerializer(template).data)
