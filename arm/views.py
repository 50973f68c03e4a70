"""Health check, error handlers (JSON under /api/, themed pages elsewhere), the 503 answered while the
database is unreachable and the sign-out confirmation: pages every app relies on, which import no app."""

import logging
import sys

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

from arm.errors import database_failure

logger = logging.getLogger(__name__)


@extend_schema(responses={200: dict, 503: dict}, auth=[])
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def health(request):
    """200 when the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any database failure means unhealthy
        return Response({"status": "unavailable", "database": "down"}, status=503)
    return Response({"status": "ok", "database": "ok"})


ERRORS = {
    400: ("bad_request", "Bad request", "The request could not be understood."),
    403: ("permission_denied", "Not allowed", "Your role in this tenant does not allow this."),
    404: ("not_found", "Not found", "There is nothing here, or it belongs to another tenant."),
    500: ("server_error", "Something went wrong", "The error was logged; please try again."),
    "csrf": (
        "csrf_failed",
        "Form expired",
        "The form's security token is missing or out of date. Reload the page and try again.",
    ),
}


def _error(request, status: int, kind=None):
    code, title, message = ERRORS[kind or status]
    if request.path.startswith("/api/"):
        return JsonResponse({"code": code, "message": message}, status=status)
    try:
        return render(
            request, "errors/error.html", {"status": status, "title": title, "message": message}, status=status
        )
    except Exception:  # the error page itself must never fail
        return HttpResponse(f"{status} {title}", status=status, content_type="text/plain")


def bad_request(request, exception=None):
    return _error(request, 400)


def permission_denied(request, exception=None):
    return _error(request, 403)


def page_not_found(request, exception=None):
    return _error(request, 404)


def server_error(request):
    # Django calls this while handling the exception: one raised outside a view (e.g. loading the
    # session in a middleware) because the database is down is a 503 too.
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        return database_unavailable(request, exc)
    return _error(request, 500)


def database_unavailable(request, exc=None):
    """503 + Retry-After: JSON under /api/, the themed page elsewhere, ``database_busy`` for a collision
    with another transaction and ``database_unavailable`` for a lost database (``arm.errors.database_failure``).
    Touches neither the database nor the session: the page renders without a request (no context processors)."""
    failure = database_failure(exc)
    logger.warning("%s, answering 503: %s", failure.code, exc)
    if request.path.startswith("/api/"):
        response = JsonResponse({"code": failure.code, "message": failure.message}, status=503)
    else:
        try:
            body = loader.render_to_string(
                "errors/error.html", {"status": 503, "title": failure.title, "message": failure.message}
            )
        except Exception:  # the error page itself must never fail
            response = HttpResponse(f"503 {failure.message}", status=503, content_type="text/plain")
        else:
            response = HttpResponse(body, status=503)
    response["Retry-After"] = str(failure.retry_after)
    response["Cache-Control"] = "no-store"
    return response


def csrf_failure(request, reason=""):
    return _error(request, 403, "csrf")


class LogoutView(auth_views.LogoutView):
    """POST signs out (Django's view). GET, e.g. a typed or bookmarked /accounts/logout/, shows a themed
    "Sign out?" page whose form POSTs, instead of a bare 405."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(settings.LOGIN_URL)
        return render(request, "registration/logout_confirm.html")


# ---------------------------------------------------------------- API keys (tenant admins)
