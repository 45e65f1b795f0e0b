"""Django settings for the consultation assistant.

Everything that differs between machines comes from the environment; the defaults are safe for a
developer's laptop and for `make test` (no environment needed).

Environment variables
---------------------
DJANGO_ENV              dev (default) | test | production. Outside production a secret key is
                        generated once and kept in var/secret_key; production requires SECRET_KEY.
DJANGO_DEBUG            "1" turns DEBUG on; off otherwise.
SECRET_KEY              Django secret key (required when DJANGO_ENV=production).
ALLOWED_HOSTS           Comma-separated host names (default: localhost,127.0.0.1,[::1] outside production).
CSRF_TRUSTED_ORIGINS    Comma-separated origins, e.g. https://consult.example.org.
DATABASE_URL            dj-database-url URL, e.g. postgres://user:pass@host/db (default: SQLite var/db.sqlite3).
DB_CONN_MAX_AGE         Seconds to keep database connections open (default 0: ASGI-safe).
TEST_DATABASE_NAME      Name of the database the test suite creates (default: Django's test_<NAME>).
REDIS_URL               Celery broker and channels-redis layer (default redis://127.0.0.1:6379/0).
CHANNEL_LAYER_CAPACITY  Updates one web process may have waiting in Redis before new ones are dropped (2000).
NER_MODEL               ner_engine model name or path loaded by each worker (default "default").
NER_TORCH_THREADS       Torch threads per worker process, set when the process starts (default 1: on shared
                        cores more threads wait on each other; scale with worker processes instead).
NER_PRECISION           fp32 (default) | int8: CPU workers may run the encoder int8-quantised (about twice as fast;
                        F1 cost in the README); GPU workers always run fp32 with autocast.
DDXPLUS_DIR             DDXPlus's folder (release_conditions.json, release_evidences.json and the patients file) for the
                        interview's differential (default ../shared/data/DDXPlus beside the project; absent: knowledge
                        base only).
NER_WARM_CONTEXT        "0" skips loading the clinical-context vocabularies at worker start (default on;
                        off, the first message with a symptom, condition or medicine loads them instead).
MESSAGE_MAX_CHARS       Longest patient message accepted, in characters (default 2000). Longer
                        messages are refused with a clear error, never truncated.
MESSAGE_PROCESS_MAX_RETRIES  Retries (exponential backoff) before a message is marked failed (default 3).
WEBSOCKET_AUTH_TIMEOUT_S  Seconds a websocket may stay open without a valid auth frame (default 15).
CONSULTATION_CREATE_RATE  DRF throttle rate for starting consultations per client (default 30/hour).
PATIENT_MESSAGE_RATE    Messages one consultation may send, websocket and API together (default 40/minute).
LOGIN_FAILURE_LIMIT     Failed sign-ins per username and address before a lockout (default 5).
LOGIN_LOCKOUT_S         How long that lockout lasts, in seconds (default 900).
CACHE_URL               redis://host:port/N for a cache shared by several web processes (rate limits,
                        login lockouts); default: per-process memory, enough for one web process.
WEBSOCKET_MAX_MESSAGE_BYTES  Largest websocket message Daphne accepts before closing the socket (1009)
                        (default MESSAGE_MAX_CHARS * 6 + 1024, room for a maximal JSON-escaped message).
MESSAGE_SWEEP_INTERVAL_S  How often each worker looks for messages that no queue holds any more (default 30).
MESSAGE_LEASE_S         Seconds a worker may hold a message before the sweeper re-queues it (default 120).
MESSAGE_QUEUE_LEASE_S   Seconds a queued message may wait in Redis before it is re-queued (default 3600).
CLINICIAN_API_RATE      DRF throttle rate per clinician for the case/template API (default 2000/hour).
EXTRACT_API_RATE        DRF throttle rate per account for POST /api/extract (default 120/hour).
EXTRACT_MAX_TEXTS       Most texts one POST /api/extract may send (default 16; each at most MESSAGE_MAX_CHARS).
SECURE_COOKIES          "1" marks session/CSRF cookies Secure (default: on in production).
SECURE_SSL_REDIRECT     Redirect HTTP to HTTPS (default: on in production; behind a TLS-terminating proxy
                        also set SECURE_PROXY_SSL_HEADER=1).
SECURE_HSTS_SECONDS     Strict-Transport-Security max-age (default: one year in production, 0 otherwise);
SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD  (default: on in production).
SECURE_PROXY_SSL_HEADER "1" trusts X-Forwarded-Proto: https from the proxy in front.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DJANGO_VAR_DIR", BASE_DIR / "var"))

DJANGO_ENV = os.environ.get("DJANGO_ENV", "dev").strip().lower()
if DJANGO_ENV not in {"dev", "test", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be dev, test or production, not {DJANGO_ENV!r}")
IS_PRODUCTION = DJANGO_ENV == "production"

DEBUG = env_bool("DJANGO_DEBUG", default=False)


def secret_key_load() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if IS_PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_ENV=production")
    # A per-checkout key, so that sessions survive restarts in development but no key is ever committed.
    key_file = VAR_DIR / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # Write-then-link so that a web server and a worker starting together agree on one complete key.
    temp_file = VAR_DIR / f".secret_key.{os.getpid()}"
    fd = os.open(temp_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    try:
        os.link(temp_file, key_file)
    except FileExistsError:
        key = key_file.read_text().strip()
    finally:
        temp_file.unlink(missing_ok=True)
    return key


SECRET_KEY = secret_key_load()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if IS_PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # daphne first so that `manage.py runserver` serves HTTP and websockets through ASGI.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "consult.apps.ConsultConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database -----------------------------------------------------------------------------------------
DEFAULT_SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if str(DATABASES["default"]["NAME"]) == str(DEFAULT_SQLITE_PATH):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    # The web process and the Celery worker write concurrently: WAL plus IMMEDIATE transactions turn
    # "database is locked" failures into short waits.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

if os.environ.get("TEST_DATABASE_NAME"):
    # Parallel test runs against one PostgreSQL server each need a test database of their own.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files -------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "static_collected" if IS_PRODUCTION else VAR_DIR / "static"))
if not IS_PRODUCTION:
    # Whitenoise warns about a missing STATIC_ROOT even when it serves from the finders.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Outside production, serve straight from static/ so that no collectstatic step is needed.
WHITENOISE_USE_FINDERS = not IS_PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

# Security -----------------------------------------------------------------------------------------
SECURE_COOKIES = env_bool("SECURE_COOKIES", default=IS_PRODUCTION)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Production defaults pass `manage.py check --deploy`; each can be turned off from the environment.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=IS_PRODUCTION)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600) if IS_PRODUCTION else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=IS_PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=IS_PRODUCTION)
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Redis, Channels, Celery --------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # All sockets of one web process share one Redis queue, and group_send silently drops what
        # exceeds its capacity: channels-redis' default of 100 is little for hundreds of open pages.
        "CONFIG": {"hosts": [REDIS_URL], "capacity": int(os.environ.get("CHANNEL_LAYER_CAPACITY", "2000"))},
    }
}

from consult.vocabulary import NER_QUEUE  # noqa: E402
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = NER_QUEUE
CELERY_TASK_ROUTES = {"consult.tasks.*": {"queue": NER_QUEUE}}
# Loaded by workers only: their start-up and shutdown hooks (torch threads, model warm-up, message sweeper).
CELERY_IMPORTS = ("consult.worker",)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
# A worker killed mid-message (OOM, deploy) hands the message back instead of dropping it.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing happens inside a web request: give up quickly when Redis is down (the message stays
# queued in the database and can be re-enqueued) instead of hanging the request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 3, "socket_timeout": 5}

# Consultation -------------------------------------------------------------------------------------
NER_MODEL = os.environ.get("NER_MODEL", "default")
NER_TORCH_THREADS = int(os.environ.get("NER_TORCH_THREADS", "1"))
if NER_TORCH_THREADS < 1:
    raise ImproperlyConfigured(f"NER_TORCH_THREADS must be 1 or more, not {NER_TORCH_THREADS}")
NER_WARM_CONTEXT = env_bool("NER_WARM_CONTEXT", default=True)
NER_PRECISION = os.environ.get("NER_PRECISION", "fp32")
if NER_PRECISION not in ("int8", "fp32"):
    raise ImproperlyConfigured(f"NER_PRECISION must be int8 or fp32, not {NER_PRECISION!r}")
# DDXPlus (CC-BY 4.0; never copied into the project): the interview's differential and its questions. Without
# it the interview runs on the knowledge base in consult/triage/knowledge/ alone.
DDXPLUS_DIR = Path(os.environ.get("DDXPLUS_DIR", BASE_DIR.parent / "shared" / "data" / "DDXPlus"))
MESSAGE_MAX_CHARS = int(os.environ.get("MESSAGE_MAX_CHARS", "2000"))
MESSAGE_PROCESS_MAX_RETRIES = int(os.environ.get("MESSAGE_PROCESS_MAX_RETRIES", "3"))
WEBSOCKET_AUTH_TIMEOUT_S = float(os.environ.get("WEBSOCKET_AUTH_TIMEOUT_S", "15"))
WEBSOCKET_MAX_MESSAGE_BYTES = int(os.environ.get("WEBSOCKET_MAX_MESSAGE_BYTES", str(MESSAGE_MAX_CHARS * 6 + 1024)))
# The database is the source of truth for what still needs processing; see consult/delivery.py.
MESSAGE_SWEEP_INTERVAL_S = float(os.environ.get("MESSAGE_SWEEP_INTERVAL_S", "30"))
MESSAGE_LEASE_S = float(os.environ.get("MESSAGE_LEASE_S", "120"))
MESSAGE_QUEUE_LEASE_S = float(os.environ.get("MESSAGE_QUEUE_LEASE_S", "3600"))

# Abuse limits -------------------------------------------------------------------------------------
# A patient answers yes/no screening questions in a couple of seconds each: 20 a minute cut off fast tappers.
PATIENT_MESSAGE_RATE = os.environ.get("PATIENT_MESSAGE_RATE", "40/minute")
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_LOCKOUT_S = int(os.environ.get("LOGIN_LOCKOUT_S", "900"))
AUTHENTICATION_BACKENDS = ["consult.security.LoginLockoutBackend"]
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "consult"}}

# REST API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["consult.api.authentication.PatientTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["consult.api.permissions.IsPatient"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_RATES": {
        "consultation_create": os.environ.get("CONSULTATION_CREATE_RATE", "30/hour"),
        "clinician": os.environ.get("CLINICIAN_API_RATE", "2000/hour"),
        "extract": os.environ.get("EXTRACT_API_RATE", "120/hour"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # One error shape: {"detail": message} and, for validation errors, "errors": {field: [messages]}.
    "EXCEPTION_HANDLER": "consult.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Consultation assistant API",
    "DESCRIPTION": "Patients (Bearer patient token), clinicians (session or Token), integrators (Token).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Clinician workspace and integrators' extraction API.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "clinician-dashboard"
LOGOUT_REDIRECT_URL = "login"
EXTRACT_MAX_TEXTS = int(os.environ.get("EXTRACT_MAX_TEXTS", "16"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
