from django.urls import path

from consult.api.views import ConsultationCreateApi, ConsultationDetailApi, MessageCreateApi

urlpatterns = [
    path("consultations/", ConsultationCreateApi.as_view(), name="consultation-create"),
    path("consultations/<uuid:consultation_id>/", ConsultationDetailApi.as_view(), name="consultation-detail"),
    path(
        "consultations/<uuid:consultation_id>/messages/",
        MessageCreateApi.as_view(),
        name="consultation-message-create",
    ),
]
