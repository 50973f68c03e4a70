"""Logging helpers wired in ``settings.LOGGING``."""

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """A refused request (403 PermissionDenied, 404, 400 SuspiciousOperation) is the client's doing, not a
    fault: Django logs it with the exception attached, which prints a full traceback for every 403. Keep the
    one-line warning ("Forbidden (Permission denied): /admin/...") and drop the traceback; 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
