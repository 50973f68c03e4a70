"""API plumbing loaded by DRF settings: errors, pagination, body limits.

No view imports here: DRF imports this module while it builds APIView."""

from __future__ import annotations

import logging
import re

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from arm.errors import AlreadyTaken, DomainError, database_failure
from arm.jsonutil import MAX_JSON_DEPTH, DuplicateKeyError, json_problem, loads_strict

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "payload_too_large"
    default_detail = "Request body too large."


class LimitedJSONParser(JSONParser):
    """JSON parser that refuses bodies above ARM_MAX_BODY_BYTES (also without a Content-Length), duplicate
    keys, and values ARM could not store and hash exactly (``arm.jsonutil.json_problem``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        from django.conf import settings

        limit = settings.ARM_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body exceeds {limit} bytes.")
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            "".encode(encoding)  # text codecs only (a bytes-to-bytes codec such as bz2 would inflate the body)
        except (LookupError, UnicodeError) as exc:
            raise exceptions.ParseError(f'Unsupported charset "{encoding}" in the Content-Type header.') from exc
        try:
            data = loads_strict(raw.decode(encoding))
        except DuplicateKeyError as exc:
            raise exceptions.ParseError(f"Malformed JSON: {exc}.") from exc
        except ValueError as exc:
            raise exceptions.ParseError(f"Malformed JSON: JSON parse error - {exc}") from exc
        except RecursionError as exc:  # e.g. "[[[[...]]]]" nested beyond the decoder's recursion limit
            raise exceptions.ParseError(f"Malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels.") from exc
        # Checked here, once, for every endpoint: a body the decoder just managed would still overflow the
        # recursion limit later (validation, canonical JSON, rendering), PostgreSQL cannot store a NUL
        # character in text or jsonb columns (a DataError, i.e. a 500, deep inside a service), and a number
        # beyond ±(2^53-1) could be stored but never hashed again. The message names the JSON path.
        problem = _body_problem(data, MAX_JSON_DEPTH)
        if problem:
            raise exceptions.ParseError(f"Malformed JSON: {problem}.")
        return data


def _body_problem(value, limit: int) -> str | None:
    """Why a parsed body is refused, as ``"<json path>: <reason>"`` (see ``arm.jsonutil.json_problem``):
    nesting deeper than ``limit``, a NUL character or lone surrogate in a string (key or value), or a
    number outside I-JSON (RFC 7493: finite, magnitude within 2^53-1, whatever the notation) that RFC 8785
    canonical JSON (genome hashes, params hashes, the audit chain) cannot represent exactly."""
    return json_problem(value, max_depth=limit)


class StrictPageSizeMixin:
    """``?page_size=`` is an integer from 1 to ``max_page_size`` (400 otherwise, as documented); empty or
    absent means the default."""

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw in (None, ""):
            return self.page_size
        if not _DIGITS.match(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"An integer from 1 to {self.max_page_size}."]}
            )
        return int(raw)


_DIGITS = re.compile(r"[0-9]{1,9}\Z")


class StandardPagination(StrictPageSizeMixin, PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


class NewestFirstCursorPagination(StrictPageSizeMixin, CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "-created_at"


def error_body(code: str, message: str, errors=None) -> dict:
    body = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return body


def exception_handler(exc, context):
    """Every error is JSON ``{"code", "message"[, "errors"]}`` with a stable code; never a 500."""
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, getattr(exc, "errors", None)), status=exc.status)
    if isinstance(exc, OperationalError | InterfaceError):
        # A collision with another transaction (database_busy: retry now) or a lost database
        # (database_unavailable): 503 with Retry-After either way (arm.errors.database_failure).
        failure = database_failure(exc)
        logger.warning("%s, answering 503: %s", failure.code, exc)
        response = Response(error_body(failure.code, failure.message), status=503)
        response["Retry-After"] = str(failure.retry_after)
        return response
    if isinstance(exc, AlreadyTaken):
        message = _summary(exc.message_dict).replace("Invalid input: ", "Already taken: ", 1)
        return Response(error_body("conflict", message, exc.message_dict), status=409)
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body("validation_error", _summary(errors), errors), status=400)
    if isinstance(exc, DataError):
        # Belt and braces behind the parser's checks: a value the database cannot store is the client's 400.
        logger.info("data error mapped to 400: %s", exc)
        return Response(
            error_body("invalid_data", "A value cannot be stored (unsupported character or out of range)."),
            status=400,
        )
    if isinstance(exc, IntegrityError):
        logger.info("integrity error mapped to 409: %s", exc)
        return Response(
            error_body("conflict", "The change conflicts with existing data (a unique or protected value)."),
            status=409,
        )
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("validation_error", _summary(errors), errors)
        return response
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.NotFound):
        code = "not_found"
    elif isinstance(exc, exceptions.MethodNotAllowed):
        code = "method_not_allowed"
    elif isinstance(exc, exceptions.ParseError):
        code = "parse_error"
    response.data = error_body(str(code), str(detail))
    return response


def _summary(errors) -> str:
    try:
        field, messages = next(iter(errors.items()))
        first = messages[0] if isinstance(messages, list) and messages else messages
        if isinstance(first, dict):
            first = _summary(first)
        return f"Invalid input: {field}: {first}"
    except (StopIteration, AttributeError, TypeError, IndexError):
        return "Invalid input."
