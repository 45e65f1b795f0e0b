from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.http import HttpResponsePermanentRedirect
from django.urls import include, path

from consult import clinician_views, views
from consult.security import LockoutAuthenticationForm

urlpatterns = [
    path("", views.home, name="home"),
    # Browsers ask for /favicon.ico on pages without a <link rel="icon"> (error pages, other clients).
    path("favicon.ico", lambda request: HttpResponsePermanentRedirect(static("consult/favicon.svg")), name="favicon"),
    path("start/", views.consultation_start, name="consultation-start"),
    path("c/<uuid:consultation_id>/", views.consultation_chat, name="consultation-chat"),
    path("api/", include("consult.api.urls")),
    path("admin/", admin.site.urls),
    # Clinician workspace
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=LockoutAuthenticationForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("clinician/", clinician_views.dashboard, name="clinician-dashboard"),
    path("clinician/consultations/<uuid:consultation_id>/", clinician_views.case_detail, name="clinician-case"),
    path("clinician/consultations/<uuid:consultation_id>/review/", clinician_views.case_review,
         name="clinician-case-review"),
    path("clinician/consultations/<uuid:consultation_id>/reviewed/", clinician_views.case_reviewed,
         name="clinician-case-reviewed"),
    path("clinician/consultations/<uuid:consultation_id>/note/", clinician_views.case_note,
         name="clinician-case-note"),
    path("clinician/consultations/<uuid:consultation_id>/urgency/", clinician_views.case_urgency,
         name="clinician-case-urgency"),
    path("clinician/consultations/<uuid:consultation_id>/patient/", clinician_views.case_patient,
         name="clinician-case-patient"),
    path("clinician/consultations/<uuid:consultation_id>/summary/", clinician_views.case_summary,
         name="clinician-case-summary"),
    path("clinician/consultations/<uuid:consultation_id>/fhir.json", clinician_views.case_fhir,
         name="clinician-case-fhir"),
]
