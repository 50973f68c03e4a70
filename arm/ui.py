"""Shared plumbing for the operator UI: pagination with a capped count, htmx-aware responses, service
errors shown on forms, the themed form mixin. The tenant side of a page (``tenant_page``, ``scoped_get``,
the tenant switch) is ``tenancy.pages``.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.functional import cached_property
from django_htmx.http import trigger_client_event

from arm.errors import DomainError

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50


def forbidden(request, message: str, status: int = 403) -> HttpResponse:
    title = "Not allowed" if status == 403 else "No tenant"
    return render(request, "errors/error.html", {"status": status, "title": title, "message": message}, status=status)


COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` + 1 rows: past that the UI says "10,000+" instead of making the
    database count every row of a large registry on every page view."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        # No ORDER BY in the counting subquery: the database need not sort what it only counts.
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap


def paginate(request, queryset, *, default_size: int = DEFAULT_PAGE_SIZE, param: str = "page", sizes=PAGE_SIZES):
    """A page of ``queryset`` (sorted in SQL by the caller) from ``?page=`` and ``?page_size=`` (25/50/100).
    A page with several lists names each list's page parameter (``param``) and fixes its size
    (``sizes=()``); ``partials/pagination.html`` links to the neighbouring pages with the same parameter."""
    size = default_size
    if sizes:
        try:
            size = int(request.GET.get("page_size", default_size))
        except ValueError:
            size = default_size
        if size not in sizes:
            size = default_size
    paginator = CappedPaginator(queryset, size)
    page = paginator.get_page(request.GET.get(param))
    page.param = param
    return page


_ANY_PK = str(uuid.UUID(int=0))


def link_rows(rows, viewname: str) -> None:
    """Gives each row of a list page (a model or a ``values()`` dict) its ``url``,
    ``reverse(viewname, args=[pk])``, reversing once: 50 ``{% url %}`` tags were a tenth of the
    directory's rendering. ``viewname`` takes one UUID."""
    head, _, tail = reverse(viewname, args=[_ANY_PK]).partition(_ANY_PK)
    for row in rows:
        if isinstance(row, dict):
            row["url"] = f"{head}{row['pk']}{tail}"
        else:
            row.url = f"{head}{row.pk}{tail}"


def non_empty(query):
    """A copy of a QueryDict without blank values (an untouched <select> sends ``state=``)."""
    params = query.copy()
    for key in list(params):
        values = [v for v in params.getlist(key) if v.strip()]
        if values:
            params.setlist(key, values)
        else:
            del params[key]
    return params


def apply_service_errors(form, exc: Exception, field_map: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError / DomainError onto the form, next to the fields it names."""
    field_map = field_map or {}
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field_for_error(form, field_map.get(field, field), error), error)
        else:
            for error in exc.messages:
                form.add_error(None, error)
    elif isinstance(exc, DomainError):
        form.add_error(None, exc.message)
    else:  # pragma: no cover - callers only pass the two kinds above
        raise exc


# Model-level unique constraints report under __all__; their message names the field they are about.
CONSTRAINT_FIELDS = (("with this name", "name"), ("with this label", "version_label"))


def field_for_error(form, field: str, message: str) -> str | None:
    """The form field an error belongs next to (None: the form's general error area)."""
    if field in form.fields:
        return field
    for fragment, candidate in CONSTRAINT_FIELDS:
        if fragment in message and candidate in form.fields:
            return candidate
    return None


def error_message(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return " ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        return " ".join(exc.messages)
    return str(exc)


def htmx_event(response: HttpResponse, *events: str) -> HttpResponse:
    for event in events:
        trigger_client_event(response, event, after="swap")
    return response


class StyledForm:
    """Mixin: every widget gets the theme's ``input`` class (Django adds aria-invalid on errors)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if getattr(widget, "input_type", "") in ("checkbox", "radio", "hidden"):
                continue
            widget.attrs["class"] = (widget.attrs.get("class", "") + " input").strip()

    def full_clean(self):
        super().full_clean()
        # After a failed submit, the first field in error takes the focus (the browser scrolls to it; the
        # page's error summary lists every problem).
        for name in self.fields:
            if name in self.errors:
                self.fields[name].widget.attrs["autofocus"] = True
                break

    def error_summary(self) -> list[tuple[str, str, str]]:
        """(field id, label, message) for every field error, in the form's order; non-field errors last."""
        rows = []
        for name, field in self.fields.items():
            for message in self.errors.get(name, []):
                rows.append(
                    (self[name].id_for_label or "", str(field.label or name.replace("_", " ").capitalize()), message)
                )
        rows.extend(("", "", message) for message in self.non_field_errors())
        return rows
