"""Prices: the tenant's price table (``PriceTable``, ``price_in_effect``), its writes (create, update,
delete, ``prices_load``) and the repricing of unpriced usage entries a new price covers. Each rule is
decided here once; API views, UI views, admin and ``load_prices`` call these functions."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_date

from arm.recording import annotate
from arm.writes import refuse_unknown, save, validate
from ledger.choices import LEDGER_WRITE_ROLES
from ledger.ingest import reprice_unpriced
from ledger.models import (
    Price,
    normalize_provider,
)
from ledger.pricing import lock_price_table
from tenancy.context import Actor, current_actor
from tenancy.permissions import require_roles

PRICE_FIELDS = (
    "provider",
    "model",
    "input_usd_per_mtok",
    "cached_input_usd_per_mtok",
    "output_usd_per_mtok",
    "effective_from",
)
PRICE_AMOUNTS = ("input_usd_per_mtok", "cached_input_usd_per_mtok", "output_usd_per_mtok")
# A price file's row may say where its numbers come from; the note is not stored.
PRICE_FILE_FIELDS = (*PRICE_FIELDS, "note")


def price_create(*, tenant, actor: Actor | None = None, pk=None, **data) -> Price:
    """Add a price row (compliance or admin); PRICE_CREATED. A second row for the same model and date
    is a 409 conflict. The tenant's unpriced entries the new row prices are priced in the same
    transaction (``_reprice_unpriced``; the record's ``repriced`` says how many, and so does
    ``price.repriced``). ``pk`` fixes the id (the demo's well-known objects); by default it is random."""
    actor = actor or current_actor()
    require_roles(actor, LEDGER_WRITE_ROLES, "Changing prices")
    refuse_unknown(data, PRICE_FIELDS)
    with transaction.atomic():
        lock_price_table(tenant, shared=False)
        price = Price(tenant=tenant, created_by=actor.ref, **data, **({"pk": pk} if pk is not None else {}))
        validate(price, constraints=True)
        # Before the save: the save appends the change record, which locks the tenant's audit chain, and
        # ingestion takes its rollup rows before that lock too (one lock order, no deadlock).
        price.repriced = reprice_unpriced(tenant, price, actor)
        with annotate(price, actor=actor, **({"repriced": price.repriced} if price.repriced else {})):
            save(price, force_insert=True)
    return price


def price_update(*, price: Price, actor: Actor | None = None, **changes) -> Price:
    """Change a price row; PRICE_CHANGED with the changed fields (none changed: no write). Entries
    already priced keep the cost they were priced at (the ledger is append-only); unpriced entries the
    changed row now prices are priced, as by ``price_create``."""
    actor = actor or current_actor()
    require_roles(actor, LEDGER_WRITE_ROLES, "Changing prices")
    refuse_unknown(changes, PRICE_FIELDS)
    with transaction.atomic():
        lock_price_table(price.tenant, shared=False)
        price = Price.objects.select_for_update().select_related("tenant").get(pk=price.pk)
        for key, value in changes.items():
            setattr(price, key, value)
        validate(price, constraints=True)
        if not price.changed_fields():
            return price
        price.repriced = reprice_unpriced(price.tenant, price, actor)  # before the record: see price_create
        with annotate(price, actor=actor, **({"repriced": price.repriced} if price.repriced else {})):
            save(price)
    return price


def price_delete(*, price: Price, actor: Actor | None = None) -> None:
    """Remove a price row; PRICE_DELETED with what it was."""
    actor = actor or current_actor()
    require_roles(actor, LEDGER_WRITE_ROLES, "Changing prices")
    with transaction.atomic():
        price = Price.objects.select_for_update().select_related("tenant").get(pk=price.pk)
        with annotate(price, actor=actor):
            price.delete()


def prices_load(*, tenant, rows: list[dict], actor: Actor | None = None) -> dict[str, int]:
    """Load price rows (the shipped ``fixtures/prices.json`` or a file like it) through the services:
    a row already there with the same prices is skipped, one with other prices is updated, a new one is
    created. Idempotent: loading the same file twice changes nothing the second time."""
    actor = actor or current_actor()
    require_roles(actor, LEDGER_WRITE_ROLES, "Changing prices")
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    with transaction.atomic():
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValidationError({f"[{i}]": "Each price is an object."})
            data = dict(row)
            refuse_unknown(data, PRICE_FILE_FIELDS)
            data.pop("note", None)
            # A row without a cached price leaves a stored one alone (a new row has none: the input price).
            missing = [f for f in PRICE_FIELDS if f not in data and f != "cached_input_usd_per_mtok"]
            if missing:
                raise ValidationError({f"[{i}].{f}": "This field is required." for f in missing})
            effective = data["effective_from"]
            if isinstance(effective, str):
                effective = parse_date(effective)
                if effective is None:
                    raise ValidationError({f"[{i}].effective_from": "Use a date: YYYY-MM-DD."})
            data["effective_from"] = effective
            for key in PRICE_AMOUNTS:
                if key in data and (data[key] is not None or key != "cached_input_usd_per_mtok"):
                    data[key] = _decimal(data[key], f"[{i}].{key}")
            if isinstance(data["provider"], str):
                data["provider"] = normalize_provider(data["provider"])
            existing = Price.objects.filter(
                tenant=tenant, provider=data["provider"], model=data["model"], effective_from=effective
            ).first()
            if existing is None:
                price_create(tenant=tenant, actor=actor, **data)
                counts["created"] += 1
            elif any(getattr(existing, key) != data[key] for key in PRICE_AMOUNTS if key in data):
                price_update(price=existing, actor=actor, **data)
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
    return counts


def _decimal(value, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValidationError({name: "A decimal number."})
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValidationError({name: "A decimal number."}) from exc
    if not result.is_finite():
        raise ValidationError({name: "A finite decimal number."})
    return result
