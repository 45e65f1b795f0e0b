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

# Clinician workspace, prompt templates, extraction, schema -------------------------------------------------
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView  # noqa: E402

from consult.api import clinician_views  # noqa: E402
from consult.api import schema as _schema  # noqa: E402,F401  (registers the patient token scheme)

urlpatterns += [
    path("cases/", clinician_views.CaseListApi.as_view(), name="case-list"),
    path("cases/<uuid:consultation_id>/", clinician_views.CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<uuid:consultation_id>/review/", clinician_views.ReviewActionApi.as_view(), name="case-review"),
    path("cases/<uuid:consultation_id>/reviewed/", clinician_views.CaseReviewedApi.as_view(), name="case-reviewed"),
    path("cases/<uuid:consultation_id>/note/", clinician_views.CaseNoteApi.as_view(), name="case-note"),
    path("cases/<uuid:consultation_id>/urgency/", clinician_views.CaseUrgencyApi.as_view(), name="case-urgency"),
    path("cases/<uuid:consultation_id>/patient/", clinician_views.CasePatientApi.as_view(), name="case-patient"),
    path("cases/<uuid:consultation_id>/fhir/", clinician_views.CaseFhirApi.as_view(), name="case-fhir"),
    path("templates/", clinician_views.TemplateListApi.as_view(), name="template-list"),
    path("templates/<int:pk>/", clinician_views.TemplateDetailApi.as_view(), name="template-detail"),
    path("templates/<int:pk>/versions/", clinician_views.TemplateVersionsApi.as_view(), name="template-versions"),
    path("templates/<int:pk>/revert/", clinician_views.TemplateRevertApi.as_view(), name="template-revert"),
    path("extract", clinician_views.ExtractApi.as_view(), name="extract"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
