"""Fixtures for the web app's unit tests: real database, real Redis broker (a dedicated db number of
the session's Redis, see `test_redis_url` in tests/conftest.py), in-memory channel layer. No worker runs
here; tests assert what was stored and published."""
from __future__ import annotations

import pytest
from channels.layers import channel_layers
from django.core.cache import cache
from consult.services.consultations import consultation_create



@pytest.fixture(scope="session", autouse=True)
def celery_broker_for_tests(test_redis_url):
    """Publish to a Redis database of its own, so that a developer's running worker never picks up
    tasks for rows that exist only in the test database."""
    from config.celery_app import app

    # Celery reads Django's CELERY_-prefixed names (config_from_object namespace), so set that one.
    app.conf.update(CELERY_BROKER_URL=test_redis_url)
    assert app.conf.broker_url == test_redis_url
    yield app
    try:
        import redis

        redis.Redis.from_url(test_redis_url).delete("ner")
    except Exception:
        pass


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def throttle_cache_clear():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def consultation_with_token(db):
    return consultation_create()


@pytest.fixture
def consultation(consultation_with_token):
    return consultation_with_token[0]


@pytest.fixture
def patient_token(consultation_with_token):
    return consultation_with_token[1]
