"""Request-scoped plumbing: body size limit (413), chunked request bodies, 503 while the database is
unreachable, ``Cache-Control: no-store`` on anything personal, and the Content-Security-Policy headers
built once per process. The actor/tenant context of a request is ``tenancy.middleware``."""

import functools
import io

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.core.signals import setting_changed
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import JsonResponse
from django.utils.cache import patch_cache_control
from django.utils.functional import SimpleLazyObject, empty

# What a view sets to change the policy of its response (django-csp's decorators): such a response, or one
# to a request that took a nonce, is built by django-csp itself.
PER_VIEW_POLICY = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro")


@functools.cache
def _configured_headers() -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """(header, value, the response attribute exempting from it, excluded path prefixes) for the policy and
    the report-only policy in the settings, as django-csp builds them (an empty value sets no header)."""
    out = []
    for header, name, exempt, report_only in (
        (HEADER, "CONTENT_SECURITY_POLICY", "_csp_exempt", False),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", "_csp_exempt_ro", True),
    ):
        prefixes = tuple((getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES", None) or ())
        out.append((header, build_policy(report_only=report_only), exempt, prefixes))
    return tuple(out)


@receiver(setting_changed)
def _policy_settings_changed(setting, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _configured_headers.cache_clear()


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the configured policy's headers built once per process.

    django-csp builds both header values for every response (reading the settings, deep-copying a
    dataclass, joining every directive): about 50 µs a response here, a tenth of a trivial request's
    time in the worker. ARM sets no per-view policy and uses no nonce, so every response gets the
    configured headers; those are now built once (and again when a test changes the settings). A response
    with a per-view policy (``PER_VIEW_POLICY``), or to a request that took a nonce, still goes through
    django-csp unchanged, as do the DEBUG error pages it leaves alone."""

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(hasattr(response, a) for a in PER_VIEW_POLICY):
            return super().process_response(request, response)
        if response.status_code in (404, 500) and settings.DEBUG:
            return response
        for header, value, exempt, prefixes in _configured_headers():
            if (
                value
                and header not in response
                and getattr(response, exempt, False) is False
                and not request.path_info.startswith(prefixes)
            ):
                response[header] = value
        # as django-csp: a nonce asked for after the header is written is an error, not a silent gap
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


def _too_large() -> JsonResponse:
    return JsonResponse(
        {"code": "payload_too_large", "message": f"Request body exceeds {settings.ARM_MAX_BODY_BYTES} bytes."},
        status=413,
    )


class BodySizeLimitMiddleware:
    """Refuse over-large bodies before anything reads them: 413 with a JSON error.

    A body sent with ``Transfer-Encoding: chunked`` has no Content-Length; gunicorn decodes the chunks
    in ``wsgi.input``, but Django reads CONTENT_LENGTH bytes of it (none). Such a body is read here, up to
    ARM_MAX_BODY_BYTES (413 beyond), and installed as the request's body with its CONTENT_LENGTH."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._is_chunked(request) and not self._buffer_chunked_body(request):
            return _too_large()
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"code": "parse_error", "message": "Invalid Content-Length."}, status=400)
        if length > settings.ARM_MAX_BODY_BYTES:
            return _too_large()
        return self.get_response(request)

    @staticmethod
    def _is_chunked(request) -> bool:
        meta = request.META
        return (
            not meta.get("CONTENT_LENGTH")
            and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
            and meta.get("wsgi.input") is not None
        )

    @staticmethod
    def _buffer_chunked_body(request) -> bool:
        """Read the decoded chunked body; False when it exceeds the limit."""
        limit = settings.ARM_MAX_BODY_BYTES
        stream = request.META["wsgi.input"]
        parts, size = [], 0
        while size <= limit:
            part = stream.read(limit + 1 - size)
            if not part:
                break
            parts.append(part)
            size += len(part)
        if size > limit:
            return False
        body = b"".join(parts)
        request.META["CONTENT_LENGTH"] = str(len(body))
        request.META["wsgi.input"] = io.BytesIO(body)
        request._stream = LimitedStream(io.BytesIO(body), len(body))
        request._read_started = False
        return True


DATABASE_ERRORS = (OperationalError, InterfaceError)


class DatabaseUnavailableMiddleware:
    """A view that fails on the database answers 503 with Retry-After instead of a 500: ``database_busy``
    when another transaction collided with it (deadlock, serialization failure, lock timeout, SQLite's
    "database is locked"), ``database_unavailable`` when the database is lost (``arm.errors.database_failure``).
    Errors raised outside views (the session or user loaded by an earlier middleware) reach ``handler500``,
    which answers the same (arm.views.server_error). DRF views answer through arm.api.exception_handler."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            from arm.views import database_unavailable

            return database_unavailable(request, exception)
        return None


class NoStoreMiddleware:
    """``Cache-Control: no-store, private`` on every response to a signed-in person or an API key, and on
    any response that sets a cookie: tenant data, and a new API key's secret, must never sit in a shared or
    browser cache. Static files (whitenoise, above this) keep their long cache lifetimes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if self._personal(request, response):
            patch_cache_control(response, no_store=True, private=True)
            if "max-age" in response.get("Cache-Control", ""):
                patch_cache_control(response, max_age=0)
        return response

    @staticmethod
    def _personal(request, response) -> bool:
        if response.cookies or request.META.get("HTTP_AUTHORIZATION"):
            return True
        # The request's session was read, so the answer may depend on who asked (never loads it here).
        session = getattr(request, "session", None)
        if session is not None and getattr(session, "accessed", False) and not session.is_empty():
            return True
        user = request.__dict__.get("user")  # AuthenticationMiddleware's lazy user, or DRF's
        if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
            return False  # nobody asked who this is
        return bool(user.is_authenticated)


class ProfileMiddleware:
    """Writes a pyinstrument profile (text) of each request to ``settings.ARM_PROFILE_DIR``, named by
    process, counter, method and path. Only installed when that setting is given (see settings).

    A process's first request is served unprofiled: it imports every view module and builds the URL
    resolvers (about 0.2 s), and profiling that at pyinstrument's 0.1 ms interval took 11-16 s and 1 GB,
    long enough for a readiness probe to give up. It is a cold start, not the steady state measured."""

    def __init__(self, get_response):
        import itertools
        import os
        from pathlib import Path

        from django.conf import settings

        self.get_response = get_response
        self.folder = Path(settings.ARM_PROFILE_DIR)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.counter = itertools.count()
        self.pid = os.getpid()
        self.warm = False

    def __call__(self, request):
        from pyinstrument import Profiler

        if not self.warm:
            self.warm = True
            return self.get_response(request)

        profiler = Profiler(interval=0.0001)
        profiler.start()
        response = self.get_response(request)
        profiler.stop()
        slug = "".join(c if c.isalnum() else "_" for c in request.path)[:80]
        name = f"{self.pid}-{next(self.counter):05d}-{request.method}-{slug}.txt"
        (self.folder / name).write_text(profiler.output_text(unicode=False, show_all=False))
        return response
