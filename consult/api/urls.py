from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from consult.api import cases, extract, patient, templates
from consult.api import schema as _schema  # noqa: F401  (registers the patient token scheme)

urlpatterns = [
    # Patients
    path("consultations/", patient.ConsultationCreateApi.as_view(), name="consultation-create"),
    path("consultations/<uuid:consultation_id>/", patient.ConsultationDetailApi.as_view(), name="consultation-detail"),
    path(
        "consultations/<uuid:consultation_id>/messages/",
        patient.MessageCreateApi.as_view(),
        name="consultation-message-create",
    ),
    # Clinician workspace
    path("cases/", cases.CaseListApi.as_view(), name="case-list"),
    path("cases/<uuid:consultation_id>/", cases.CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<uuid:consultation_id>/review/", cases.ReviewActionApi.as_view(), name="case-review"),
    path("cases/<uuid:consultation_id>/reviewed/", cases.CaseReviewedApi.as_view(), name="case-reviewed"),
    path("cases/<uuid:consultation_id>/note/", cases.CaseNoteApi.as_view(), name="case-note"),
    path("cases/<uuid:consultation_id>/urgency/", cases.CaseUrgencyApi.as_view(), name="case-urgency"),
    path("cases/<uuid:consultation_id>/patient/", cases.CasePatientApi.as_view(), name="case-patient"),
    path("cases/<uuid:consultation_id>/fhir/", cases.CaseFhirApi.as_view(), name="case-fhir"),
    # Prompt templates
    path("templates/", templates.TemplateListApi.as_view(), name="template-list"),
    path("templates/<int:pk>/", templates.TemplateDetailApi.as_view(), name="template-detail"),
    path("templates/<int:pk>/versions/", templates.TemplateVersionsApi.as_view(), name="template-versions"),
    path("templates/<int:pk>/revert/", templates.TemplateRevertApi.as_view(), name="template-revert"),
    # Integrators
    path("extract", extract.ExtractApi.as_view(), name="extract"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
