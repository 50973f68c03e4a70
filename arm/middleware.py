"""Request-scoped plumbing: body size limit (413), chunked request bodies, 503 while the database is
unreachable and ``Cache-Control: no-store`` on anything personal. The actor/tenant context of a request
is ``tenancy.middleware``."""

import io

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.utils.cache import patch_cache_control
from django.utils.functional import SimpleLazyObject, empty


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
    resolvers, and profiling that at pyinstrument's interval took long enough (and enough memory) for a
    readiness probe to give up. It is a cold start, not the steady state measured."""

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
