from django.urls import re_path

from consult.consumers import ConsultationConsumer

websocket_urlpatterns = [
    re_path(
        r"^ws/consultations/(?P<consultation_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/$",
        ConsultationConsumer.as_asgi(),
    ),
]
