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


DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable. Please try again in a moment."


def database_unavailable(request, exc=None):
    """503 + Retry-After: JSON ``database_unavailable`` under /api/, the themed page elsewhere. Touches
    neither the database nor the session: the page renders without a request (no context processors)."""
    logger.warning("database unavailable, answering 503: %s", exc)
    if request.path.startswith("/api/"):
        response = JsonResponse({"code": "database_unavailable", "message": DATABASE_UNAVAILABLE_MESSAGE}, status=503)
    else:
        try:
            body = loader.render_to_string(
                "errors/error.html",
                {"status": 503, "title": "Service unavailable", "message": DATABASE_UNAVAILABLE_MESSAGE},
            )
        except Exception:  # the error page itself must never fail
            response = HttpResponse(f"503 {DATABASE_UNAVAILABLE_MESSAGE}", status=503, content_type="text/plain")
        else:
            response = HttpResponse(body, status=503)
    response["Retry-After"] = str(settings.ARM_DB_RETRY_AFTER_SECONDS)
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
