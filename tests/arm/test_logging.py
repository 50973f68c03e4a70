"""A refused request logs one line, not a traceback; a server error keeps its traceback."""

import logging
import sys

from arm.logging import ClientErrorsWithoutTraceback


def _record(status):
    try:
        raise PermissionError("nope")
    except PermissionError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Forbidden: /admin/", (), exc_info)
    record.status_code = status
    return record


def test_a_403_is_logged_without_its_traceback():
    record = _record(403)
    assert ClientErrorsWithoutTraceback().filter(record)
    assert record.exc_info is None
    assert "Traceback" not in logging.Formatter().format(record)


def test_a_500_keeps_its_traceback():
    record = _record(500)
    ClientErrorsWithoutTraceback().filter(record)
    assert "Traceback" in logging.Formatter().format(record)


def test_the_console_handler_uses_the_filter(settings):
    assert "client_errors_without_traceback" in settings.LOGGING["handlers"]["console"]["filters"]
