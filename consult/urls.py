from django.contrib import admin
from django.urls import include, path

from consult import views

urlpatterns = [
    path("", views.home, name="home"),
    path("start/", views.consultation_start, name="consultation-start"),
    path("c/<uuid:consultation_id>/", views.consultation_chat, name="consultation-chat"),
    path("api/", include("consult.api.urls")),
    path("admin/", admin.site.urls),
]
