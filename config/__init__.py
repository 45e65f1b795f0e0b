"""The project shell: settings, URL and websocket routes, the ASGI/WSGI entry points, the Celery app and the
Daphne server with its websocket limit. Configuration only: the domain lives in `consult`."""
