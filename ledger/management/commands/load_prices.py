"""``manage.py load_prices --tenant SLUG [--file PATH]``: load a price list into a tenant's price table
through the price services (validation and PRICE_CREATED / PRICE_UPDATED change records). Idempotent:
rows already present with the same prices are left alone."""

import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from arm.commandutils import ArmCommand, as_command_error, usage_error
from arm.errors import DomainError
from arm.validators import terminal_safe
from ledger.prices import prices_load
from tenancy.commandutils import command_actor, get_tenant
from tenancy.context import actor_context

DEFAULT_FILE = Path(settings.BASE_DIR) / "fixtures" / "prices.json"


class Command(ArmCommand):
    help = (
        "Load list prices (provider, model, USD per million input, cached input and output tokens, effective_from; "
        "an optional note per row is not stored) into a tenant's price table, pricing the tenant's unpriced usage "
        "they cover. Defaults to the shipped fixtures/prices.json; loading twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--file", default=str(DEFAULT_FILE), help="a JSON list of prices (default: %(default)s)")
        parser.add_argument("--actor", help="username the change records name (default: system)")

    def handle(self, *args, **options):
        tenant = get_tenant(options["tenant"])
        path = Path(options["file"])
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise usage_error(terminal_safe(f"Cannot read {path}: {exc.strerror}.")) from exc
        except ValueError as exc:
            raise usage_error(terminal_safe(f"{path} is not valid JSON: {exc}.")) from exc
        if not isinstance(rows, list):
            raise usage_error(terminal_safe(f"{path} must hold a JSON list of prices."))
        actor = command_actor(options.get("actor"))
        try:
            with actor_context(actor, tenant):
                counts = prices_load(tenant=tenant, rows=rows, actor=actor)
        except (ValidationError, DomainError) as exc:
            raise as_command_error(exc) from exc
        self.stdout.write(
            f"Prices for {tenant.slug}: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged."
        )
