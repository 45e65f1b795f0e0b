"""The patient's endpoints: start a consultation, read it, send a message (patient token, see authentication)."""
from __future__ import annotations

from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consult.api.serializers import MessageCreateSerializer
from consult.api.throttling import ConsultationCreateThrottle, PatientMessageThrottle
from consult.models import Consultation
from consult.selectors.consultation import consultation_state_get
from consult.services.consultations import consultation_create
from consult.services.messages import MessageRejected, message_create


def consultation_from_request(*, request: Request, consultation_id) -> Consultation:
    consultation = request.auth
    if not isinstance(consultation, Consultation) or consultation.pk != consultation_id:
        raise Http404
    return consultation


class ConsultationCreateApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ConsultationCreateThrottle]

    def post(self, request: Request) -> Response:
        consultation, token = consultation_create()
        return Response({"id": str(consultation.id), "patient_token": token}, status=status.HTTP_201_CREATED)


class ConsultationDetailApi(APIView):
    def get(self, request: Request, consultation_id) -> Response:
        consultation = consultation_from_request(request=request, consultation_id=consultation_id)
        return Response(consultation_state_get(consultation=consultation))


class MessageCreateApi(APIView):
    throttle_classes = [PatientMessageThrottle]

    def post(self, request: Request, consultation_id) -> Response:
        consultation = consultation_from_request(request=request, consultation_id=consultation_id)
        serializer = MessageCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            message = message_create(consultation=consultation, text=serializer.validated_data["text"])
        except MessageRejected as rejected:
            # 400 {"detail": message, "errors": {"text": [message]}} (consult.api.exceptions)
            raise ValidationError({"text": [rejected.message]}, code=rejected.code) from None
        return Response({"id": message.id, "status": message.status}, status=status.HTTP_202_ACCEPTED)
