"""Health check and error handlers: JSON under /api/, themed pages elsewhere."""

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response


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
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        return Response({"status": "unavailable", "database": "down"}, status=503)
    return Response({"status": "ok", "database": "ok"})


ERRORS = {
    400: ("bad_request", "Bad request", "The request could not be understood."),
    403: ("permission_denied", "Not allowed", "Your role in this tenant does not allow this."),
    404: ("not_found", "Not found", "There is nothing here, or it belongs to another tenant."),
    500: ("server_error", "Something went wrong", "The error was logged; please try again."),
}


def _error(request, status: int):
    code, title, message = ERRORS[status]
    if request.path.startswith("/api/"):
        return JsonResponse({"code": code, "message": message}, status=status)
    try:
        return render(
            request, "errors/error.html", {"status": status, "title": title, "message": message}, status=status
        )
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        return HttpResponse(f"{status} {title}", status=status, content_type="text/plain")


def bad_request(request, exception=None):
    return _error(request, 400)


def permission_denied(request, exception=None):
    return _error(request, 403)


def page_not_found(request, exception=None):
    return _error(request, 404)


def server_error(request):
    return _error(request, 500)
