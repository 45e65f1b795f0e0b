from django.apps import AppConfig


class ConsultConfig(AppConfig):
    name = "consult"
    verbose_name = "Consultations"
    default_auto_field = "django.db.models.BigAutoField"
