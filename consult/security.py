"""Abuse limits: per-client rate limits and the sign-in lockout, kept in Django's cache.

The cache is per process unless CACHE_URL points at Redis; one web process (the default deployment)
needs nothing more, several must share CACHE_URL for the limits to add up across them.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest

RATE_PERIODS_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
                  "d": 86400, "day": 86400}


@dataclass(frozen=True)
class Rate:
    limit: int
    period_s: int


def rate_parse(*, rate: str) -> Rate:
    """"20/minute" -> Rate(20, 60); the same notation as DRF's throttle rates."""
    count, _, period = rate.partition("/")
    try:
        return Rate(limit=int(count), period_s=RATE_PERIODS_S[period.strip().lower()])
    except (ValueError, KeyError):
        raise ValueError(f"a rate is '<count>/<second|minute|hour|day>', not {rate!r}") from None


def rate_limit_hit(*, scope: str, key: str, rate: str) -> float | None:
    """Count one event for `key`; None while within `rate`, else the seconds until the window resets.

    A fixed window per key: cheap, atomic with cache.add/incr (in memory and in Redis), and good enough
    to stop a flood, which is all it is for.
    """
    parsed = rate_parse(rate=rate)
    window = int(time.time() // parsed.period_s)
    cache_key = f"ratelimit:{scope}:{key}:{window}"
    cache.add(cache_key, 0, timeout=parsed.period_s + 1)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=parsed.period_s + 1)
        count = 1
    if count <= parsed.limit:
        return None
    return max(1.0, (window + 1) * parsed.period_s - time.time())


def patient_message_limit_hit(*, consultation_id) -> float | None:
    """One message from a consultation, over the websocket or the API (one budget for both)."""
    return rate_limit_hit(scope="patient_message", key=str(consultation_id), rate=settings.PATIENT_MESSAGE_RATE)


# Sign-in lockout ---------------------------------------------------------------------------------------


def client_address(*, request: HttpRequest | None) -> str:
    # REMOTE_ADDR only: a forwarded-for header is whatever the client wants it to be.
    if request is None:
        return "-"
    return request.META.get("REMOTE_ADDR") or "-"


def _login_key(*, username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.casefold()}\n{address}".encode()).hexdigest()
    return f"login-failures:{digest}"


def login_locked(*, username: str, address: str) -> bool:
    return cache.get(_login_key(username=username, address=address), 0) >= settings.LOGIN_FAILURE_LIMIT


def login_failure_record(*, username: str, address: str) -> int:
    """One more failed sign-in; the count (and so the lockout) lasts LOGIN_LOCKOUT_S from the first one."""
    key = _login_key(username=username, address=address)
    cache.add(key, 0, timeout=settings.LOGIN_LOCKOUT_S)
    try:
        return cache.incr(key)
    except ValueError:
        cache.add(key, 1, timeout=settings.LOGIN_LOCKOUT_S)
        return 1


def login_failures_clear(*, username: str, address: str) -> None:
    cache.delete(_login_key(username=username, address=address))


class LoginLockoutBackend(ModelBackend):
    """Django's ModelBackend, refusing a username from one address after LOGIN_FAILURE_LIMIT failures.

    Every sign-in goes through authenticate() (the clinician login page, the admin, DRF session logins),
    so the lockout sits here rather than in one view. While locked even the right password fails.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        address = client_address(request=request)
        if login_locked(username=username, address=address):
            # PermissionDenied stops authenticate() trying other backends.
            raise PermissionDenied("too many failed sign-ins")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failure_record(username=username, address=address)
        else:
            login_failures_clear(username=username, address=address)
        return user


class LockoutAuthenticationForm(AuthenticationForm):
    """The sign-in form, saying so when the account is locked instead of "did not match"."""

    locked = False

    def clean(self):
        username = self.cleaned_data.get("username")
        if username and login_locked(username=username, address=client_address(request=self.request)):
            self.locked = True
            raise ValidationError(
                "Too many failed sign-in attempts. Please wait %(minutes)d minutes and try again.",
                code="locked",
                params={"minutes": max(1, settings.LOGIN_LOCKOUT_S // 60)},
            )
        return super().clean()
