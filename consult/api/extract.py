"""The integrators' extraction endpoint: entities for texts, with the templates the workers use."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from consult import extraction
from consult.api.authentication import WORKSPACE_AUTHENTICATION
from consult.api.permissions import MayExtract
from consult.api.serializers import ExtractRequestSerializer, ExtractResponseSerializer
from consult.services.prompt_templates import prompt_templates_sync


class ExtractApi(APIView):
    authentication_classes = WORKSPACE_AUTHENTICATION
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
        prompt_templates_sync()
        results = extraction.texts_extract(texts=serializer.validated_data["texts"])
        return Response({
            "model_version": results[0].model_version if results else "",
            "template_version": results[0].template_version if results else "",
            "results": [{"entities": result.entities} for result in results],
        })
