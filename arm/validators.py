"""Input limits shared by every app (model field validators, so the API, UI forms and admin all refuse
the same input with the field named), and escaping for text printed to a terminal.

- Names and labels: no control or format characters (Unicode categories Cc, Cf: bidi overrides such as
  U+202E, zero-width characters; Zl, Zp: line and paragraph separators) and no leading or trailing
  whitespace. Such characters make one name look like another in the UI, in logs and in a terminal.
- Descriptions and notes: at most ``MAX_DESCRIPTION_LENGTH`` characters.
- Free-form JSON objects (environment config, provider federation config, evaluation details): at most
  ``MAX_JSON_OBJECT_BYTES`` in RFC 8785 canonical form, with numbers ARM can hash exactly.
"""

from __future__ import annotations

import unicodedata
import uuid

import rfc8785
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.utils.deconstruct import deconstructible

from arm.jsonutil import json_problem

MAX_DESCRIPTION_LENGTH = 2000
MAX_JSON_OBJECT_BYTES = 16 * 1024
MAX_OWNER_LENGTH = 254
MAX_OWNERS = 50
MAX_TAGS = 50
MAX_TOOL_NAME_LENGTH = 200


def as_uuid(value) -> uuid.UUID | None:
    """``value`` as a UUID when it is one written as text (or already a UUID), else None. The one parser
    of ids typed in URLs, query strings, forms and bodies: integers, booleans, lists and other JSON values
    are not ids (``uuid.UUID(str(False))`` must not be attempted)."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


REFUSED_CATEGORIES = {"Cc": "control", "Cf": "format", "Zl": "line separator", "Zp": "paragraph separator"}


def unsafe_character(text: str) -> str | None:
    """The first control/format/separator character of ``text`` as ``U+XXXX``, or None."""
    if text.isascii() and text.isprintable():
        return None  # the common case, without a per-character walk
    for char in text:
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def validate_name(value) -> None:
    """A name or label: printable text without surrounding whitespace."""
    if not isinstance(value, str):
        return
    char = unsafe_character(value)
    if char:
        raise ValidationError(
            f"Must not contain control, format or separator characters (found {char}).", code="unsafe_character"
        )
    if value != value.strip():
        raise ValidationError("Must not start or end with whitespace.", code="surrounding_whitespace")


validate_description_length = MaxLengthValidator(MAX_DESCRIPTION_LENGTH)


@deconstructible
class CanonicalJSONSizeValidator:
    """A JSON value whose RFC 8785 form is at most ``limit`` bytes (and that RFC 8785 can represent)."""

    def __init__(self, limit: int = MAX_JSON_OBJECT_BYTES):
        self.limit = limit

    def __call__(self, value) -> None:
        problem = json_problem(value, root="")
        if problem:
            raise ValidationError(f"{problem}.", code="invalid_json")
        try:
            size = len(rfc8785.dumps(value))
        except (rfc8785.CanonicalizationError, TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise ValidationError(f"Not representable as canonical JSON: {exc}.", code="invalid_json") from exc
        if size > self.limit:
            raise ValidationError(f"At most {self.limit} bytes as canonical JSON (this is {size}).", code="too_large")

    def __eq__(self, other) -> bool:
        return isinstance(other, CanonicalJSONSizeValidator) and other.limit == self.limit


validate_json_object_size = CanonicalJSONSizeValidator(MAX_JSON_OBJECT_BYTES)


def terminal_safe(text) -> str:
    """``text`` for printing to a terminal: control, format and separator characters (escape sequences,
    bidi overrides, zero-width characters) are shown escaped (``\\x1b``, ``\\u202e``), never raw."""
    text = str(text)
    if unsafe_character(text) is None:
        return text
    out = []
    for char in text:
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)
