"""The tenant's price table as ingestion and repricing read it: the price in effect for a model at a
time (``PriceTable``, ``price_in_effect``; a dated release falls back to its base model's price) and the
lock that orders price writes after the ingestions that left entries unpriced."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

from django.db import connection

from ledger.models import (
    Price,
    utc_day,
)

MICRO = Decimal("0.000001")
ZERO = Decimal(0)


# A dated or numbered release of a model ("gpt-4.1-2025-04-14", "claude-sonnet-4-5-20250929",
# "gemini-2.0-flash-001") is priced as its base model when it has no price of its own.
RELEASE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|\d{3})\Z")


def base_model(model: str) -> str | None:
    match = RELEASE_SUFFIX.search(model)
    return model[: match.start()] if match else None


class PriceTable:
    """The tenant's prices for some (provider, model) pairs, loaded in one query; ``resolve`` is THE
    price rule: the row with the greatest ``effective_from`` on or before the UTC day, for the model as
    reported, else (no row for it at all) for its base model without a release suffix."""

    def __init__(self, prices):
        self._rows: dict[tuple[str, str], list[Price]] = defaultdict(list)
        for price in prices:
            self._rows[(price.provider, price.model)].append(price)
        for rows in self._rows.values():
            rows.sort(key=lambda p: p.effective_from, reverse=True)

    @classmethod
    def load(cls, tenant, pairs) -> PriceTable:
        pairs = set(pairs)
        pairs |= {(p, base) for p, m in pairs if (base := base_model(m))}
        if not pairs:
            return cls([])
        providers = {p for p, _ in pairs}
        models = {m for _, m in pairs}
        rows = Price.objects.filter(tenant=tenant, provider__in=providers, model__in=models)
        return cls(p for p in rows if (p.provider, p.model) in pairs)

    def with_price(self, price: Price) -> PriceTable:
        """This table with ``price`` as it is in memory (a row being created or changed) in place of its
        stored version."""
        rows = [p for ps in self._rows.values() for p in ps if p.pk != price.pk]
        return PriceTable([*rows, price])

    def resolve(self, provider: str, model: str, day: date) -> Price | None:
        rows = self._rows.get((provider, model))
        if rows is None and (base := base_model(model)):
            rows = self._rows.get((provider, base))
        for price in rows or ():
            if price.effective_from <= day:
                return price
        return None


def price_in_effect(*, tenant, provider: str, model: str, at: datetime) -> Price | None:
    """The price of ``provider``/``model`` in effect at ``at`` (its UTC day), or None."""
    return PriceTable.load(tenant, [(provider, model)]).resolve(provider, model, utc_day(at))


# pg_advisory_xact_lock's first key: the price table of a tenant (the second key is from its id).
PRICE_TABLE_LOCK = 0x50524943


def lock_price_table(tenant, *, shared: bool) -> None:
    """Serialize price writes with the ingestions that leave entries unpriced, so that no entry is
    stored unpriced after a price that covers it has been written: an ingestion holds the tenant's
    price-table lock shared from reading prices for its unpriced entries until it commits; a price
    write holds it exclusively. PostgreSQL: a transaction-scoped advisory lock (ingestions do not
    wait for each other). SQLite: nothing to do, every write transaction is IMMEDIATE (settings), so
    writers are already serialized from their first statement."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    key = int.from_bytes(uuid.UUID(str(tenant.pk)).bytes[:4], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [PRICE_TABLE_LOCK, key])
