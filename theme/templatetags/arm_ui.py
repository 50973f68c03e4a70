"""Template helpers for the operator UI: status chips, icons, role checks, query strings, JSON."""

from __future__ import annotations

import functools
import json

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

# Colour per status. Kept in Python so Tailwind (which scans .py files) generates every class.
_GREEN = "border-arm-success/40 bg-arm-success/15 text-green-300"
_AMBER = "border-arm-warning/40 bg-arm-warning/15 text-amber-300"
_RED = "border-arm-danger/50 bg-arm-danger/15 text-red-300"
_BLUE = "border-arm-info/40 bg-arm-info/15 text-blue-300"
_VIOLET = "border-arm-violet/40 bg-arm-violet/15 text-violet-300"
_CYAN = "border-arm-accent/40 bg-arm-accent/10 text-cyan-300"
_GREY = "border-arm-border bg-arm-raised text-arm-muted"
_DIM = "border-arm-border/60 bg-transparent text-arm-faint"

CHIP_CLASSES = {
    # version lifecycle
    "DRAFT": _GREY,
    "TESTING": _BLUE,
    "CANDIDATE": _VIOLET,
    "APPROVED": _GREEN,
    "DEPRECATED": _AMBER,
    "RETIRED": _DIM,
    # instance lifecycle
    "PROVISIONING": _BLUE,
    "ACTIVE": _GREEN,
    "PAUSED": _AMBER,
    "READONLY": _CYAN,
    "DRAINING": _AMBER,
    "QUARANTINED": _RED,
    # evaluation / integrity
    "PENDING": _GREY,
    "PASS": _GREEN,
    "FAIL": _RED,
    "VERIFIED": _GREEN,
    "TAMPERED": _RED,
    "UNCHECKED": _DIM,
    # health
    "healthy": _GREEN,
    "degraded": _AMBER,
    "stale": _RED,
    "never": _DIM,
    "unhealthy": _RED,  # a provider's health (its endpoint's answer); "unknown" stays grey
    # schedule runs ("failed" is the deliveries' below)
    "ok": _GREEN,
    "running": _BLUE,
    # risk
    "low": _GREEN,
    "medium": _BLUE,
    "high": _AMBER,
    "critical": _RED,
    # decisions / approvals
    "ALLOW": _GREEN,
    "DENY": _RED,
    "NEEDS_APPROVAL": _AMBER,
    "DENIED": _RED,
    "EXPIRED": _DIM,
    # environment tiers / provider types
    "dev": _GREY,
    "staging": _VIOLET,
    "prod": _RED,
    "local": _GREY,
    "federated": _CYAN,
    # notification deliveries and endpoint kinds
    "succeeded": _GREEN,
    "failed": _AMBER,
    "dead": _RED,
    "pending": _GREY,
    "webhook": _BLUE,
    "slack": _VIOLET,
    "email": _CYAN,
}

DOTS = {"ACTIVE", "healthy", "unhealthy", "PROVISIONING", "QUARANTINED", "TAMPERED", "VERIFIED"}


@register.filter
def chip(value, prefix: str = ""):
    """``{{ v.lifecycle_state|chip }}`` → a coloured status pill; ``|chip:"eval "`` prefixes the text."""
    if value in (None, ""):
        return ""
    return _chip(str(value), str(prefix))


@functools.lru_cache(maxsize=512)
def _chip(key: str, prefix: str):
    # A page shows the same few states over and over (150 chips on a 50-row directory page, profiled at a
    # tenth of its rendering): each pill is built once per process (safe HTML, immutable text).
    classes = CHIP_CLASSES.get(key, _GREY)
    dot = mark_safe('<span class="size-1.5 rounded-full bg-current"></span>') if key in DOTS else ""
    label = key.replace("_", " ")
    return format_html('<span class="chip {}" data-status="{}">{}{}{}</span>', classes, key, dot, prefix, label)


@register.filter
def can(actor, roles: str) -> bool:
    """``{% if arm_actor|can:"operator" %}`` — comma-separated roles; admin holds every member role."""
    return bool(actor) and actor.has_any([r.strip() for r in roles.split(",") if r.strip()])


@register.filter
def pretty_json(value) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


@register.filter
def json_value(value) -> str:
    """A genome value as JSON (``{"temperature": 0.2}``, ``["crm:read"]``, ``true``), never a Python repr;
    plain strings as they are, a missing value as —."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        return str(value)


@register.filter
def http_url(value) -> str:
    """``value`` when it is an http(s) URL, else '' (links from API-written JSON, e.g. an evaluation's
    ``details.run_url``, never become ``javascript:`` links)."""
    text = str(value or "").strip()
    return text if text.lower().startswith(("http://", "https://")) else ""


@register.filter
def short(value, length: int = 12) -> str:
    text = str(value or "")
    return text if len(text) <= int(length) else text[: int(length)] + "…"


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.simple_tag(takes_context=True)
def qs(context, **changes) -> str:
    """The current query string with ``changes`` applied (``None``/'' removes a key); starts with '?'."""
    request = context["request"]
    params = request.GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value not in (None, ""):
            params[key] = value
    encoded = params.urlencode()
    return "?" + encoded if encoded else "?"


@register.simple_tag(takes_context=True)
def page_qs(context, page, number) -> str:
    """The current query string pointing ``page``'s list (its ``param``, see ``arm.ui.paginate``) at
    page ``number``; the other lists' pages and the filters are kept."""
    return qs(context, **{getattr(page, "param", "page"): number})


@register.simple_tag(takes_context=True)
def actor_display(context, ref) -> str:
    """``{% actor_display r.actor %}`` → ``alice``, ``alice via key "ci-bot"``, ``key "ci-bot"`` or ``system``,
    with the raw reference as its title. Key names come from the request's ``ActorDirectory`` (one query
    per page; views prime it with the references they show)."""
    from tenancy.selectors import ActorDirectory, actor_directory

    request = context.get("request")
    directory = actor_directory(request) if request is not None else ActorDirectory(None)
    raw = str(ref or "")
    return format_html('<span title="{}" data-actor="{}">{}</span>', raw, raw, directory.display(raw))


ICONS = {
    "directory": '<path d="M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z"/>',
    "policies": '<path d="M12 3l8 3v6c0 4.5-3.4 8.3-8 9-4.6-.7-8-4.5-8-9V6z"/><path d="M9 12l2 2 4-4"/>',
    "approvals": '<path d="M9 11l3 3L22 4"/><path d="M21 12v7a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h11"/>',
    "evaluations": '<path d="M4 19h16"/><path d="M7 16V9"/><path d="M12 16V5"/><path d="M17 16v-4"/>',
    "incidents": '<path d="M12 3l10 18H2z"/><path d="M12 10v4"/><path d="M12 17.5v.5"/>',
    "cost": (
        '<circle cx="12" cy="12" r="9"/>'
        '<path d="M15 9.5c-.5-1-1.6-1.5-3-1.5-1.7 0-3 .9-3 2s1.3 1.7 3 2 3 .9 3 2-1.3 2-3 2c-1.4 0-2.5-.5-3-1.5"/>'
        '<path d="M12 6v2M12 16v2"/>'
    ),
    "audit": '<path d="M8 3h8l4 4v14H4V3z"/><path d="M8 11h8M8 15h8M8 7h4"/>',
    "federation": (
        '<circle cx="12" cy="12" r="9"/><path d="M3 12h18"/>'
        '<path d="M12 3c2.5 2.7 3.8 5.7 3.8 9s-1.3 6.3-3.8 9c-2.5-2.7-3.8-5.7-3.8-9S9.5 5.7 12 3z"/>'
    ),
    "menu": '<path d="M4 6h16M4 12h16M4 18h16"/>',
    "search": '<circle cx="11" cy="11" r="7"/><path d="M21 21l-4.3-4.3"/>',
    "plus": '<path d="M12 5v14M5 12h14"/>',
    "x": '<path d="M6 6l12 12M18 6L6 18"/>',
    "logout": '<path d="M15 4h4v16h-4"/><path d="M10 17l5-5-5-5"/><path d="M15 12H3"/>',
    "shield": '<path d="M12 3l8 3v6c0 4.5-3.4 8.3-8 9-4.6-.7-8-4.5-8-9V6z"/>',
    "check": '<path d="M5 12l5 5L20 7"/>',
    "alert": '<circle cx="12" cy="12" r="9"/><path d="M12 7v6"/><path d="M12 16.5v.5"/>',
    "edit": '<path d="M4 20h4L19 9l-4-4L4 16z"/>',
    "chevron": '<path d="M9 6l6 6-6 6"/>',
    "layers": '<path d="M12 3l9 5-9 5-9-5z"/><path d="M3 13l9 5 9-5"/>',
    "clock": '<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>',
    "users": (
        '<circle cx="9" cy="8" r="3.5"/><path d="M2.5 20c.6-3.6 3.2-5.5 6.5-5.5s5.9 1.9 6.5 5.5"/>'
        '<path d="M16 4.5a3.5 3.5 0 0 1 0 7"/><path d="M18 14.8c2 .7 3.2 2.4 3.5 5.2"/>'
    ),
    "key": '<circle cx="8" cy="15" r="4"/><path d="M11 12l9-9"/><path d="M17 6l3 3"/><path d="M15 8l2 2"/>',
    "download": '<path d="M12 4v11"/><path d="M7 10l5 5 5-5"/><path d="M5 20h14"/>',
    "bell": '<path d="M6 16V11a6 6 0 0 1 12 0v5l2 2H4z"/><path d="M10 20a2 2 0 0 0 4 0"/>',
}


@register.simple_tag
def icon(name: str, size: str = "size-4") -> str:
    return _icon(str(name), str(size))


@functools.lru_cache(maxsize=256)
def _icon(name: str, size: str) -> str:
    path = ICONS.get(name, "")
    return format_html(
        '<svg class="{} shrink-0" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" '
        'stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">{}</svg>',
        size,
        mark_safe(path),  # constant markup from ICONS
    )


# ---------------------------------------------------------------- money and times


def format_usd(value) -> str:
    """ARM's one money format: ``$12,345.67``, minus before the sign (``-$3.50``); an amount under a cent
    keeps its digits (``$0.004``, not ``$0.00``) up to four places; ``None`` → ``—``. Tables use it as the
    ``usd`` filter, the Cost page's charts call it (``ledger.charts``), so a figure reads the same in both."""
    from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if 0 < amount < Decimal("0.01"):
        small = amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP).normalize()
        if small == 0:
            return f"{sign}<$0.0001"
        return f"{sign}${small:f}"
    return f"{sign}${amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"


# ``{{ amount|usd }}``: every amount in the UI goes through this filter or ``format_usd``.
usd = register.filter("usd", format_usd)


def _relative(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds < 60:
        return f"{seconds} s" if seconds else "0 s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes and hours < 3 else f"{hours} h"
    days = hours // 24
    return f"{days} d"


def when_text(value, now=None) -> str:
    """The visible text of ``|when``: "just now", "3 min ago", "in 12 min" today (and for expiries within a
    day), else the UTC date and time ("2026-11-20 14:03")."""
    import datetime as dt

    now = now or timezone.now()
    delta = (value - now).total_seconds()
    if delta > 0:
        if delta < 60:
            return "in under a minute"
        if delta < 24 * 3600:
            return f"in {_relative(delta)}"
    elif value.astimezone(dt.UTC).date() == now.astimezone(dt.UTC).date():
        return "just now" if -delta < 60 else f"{_relative(delta)} ago"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


@register.filter
def when(value, empty: str = "—"):
    """``{{ i.last_heartbeat_at|when:"never" }}`` → ``<time datetime="…" title="2026-11-27 05:04:34 UTC">3 min
    ago</time>``: relative today, a date before today, the absolute UTC time on hover. Server-side only."""
    import datetime as dt

    if not value:
        return empty
    if isinstance(value, dt.datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value, dt.UTC)
    elif isinstance(value, dt.date):
        return format_html('<time datetime="{}">{}</time>', value.isoformat(), value.isoformat())
    else:
        return str(value)
    utc = value.astimezone(dt.UTC)
    # Every part is digits, separators and fixed words (no text from the value's owner), so nothing needs
    # escaping: built directly, not through format_html (50 per directory page).
    stamp = utc.isoformat(timespec="seconds").replace("+00:00", "Z")
    return mark_safe(f'<time datetime="{stamp}" title="{utc:%Y-%m-%d %H:%M:%S} UTC">{when_text(value)}</time>')
