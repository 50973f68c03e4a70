"""Usage intake fidelity (issue 24):

- ``Price.cached_input_usd_per_mtok`` (null: cached input costs the input price) and
  ``UsageEntry.cached_input_tokens`` (a part of ``input_tokens``, held there by a check constraint);
- a partial index of the unpriced entries (the Cost page's list, and repricing when a price arrives);
- price providers stored lowercase (usage intake stores them so from now on): existing rows are
  lowercased; two rows that would then clash (``OpenAI`` and ``openai`` for one model and date) stop
  the migration, named, for a person to remove one. Usage entries already stored keep the provider
  as sent (the ledger is append-only); repricing matches providers ignoring case;
- the ledger's guard (``ledger.triggers``): still append-only, but an unpriced entry's cost may be set
  once, to priced. On SQLite the constraints rebuild the table, dropping its triggers: the guard is
  installed after them (and the plain append-only triggers put back when going back)."""

from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import Lower

from arm.dbtriggers import append_only, drop_triggers_sql
from ledger.triggers import TABLE, guard_operation


def lowercase_price_providers(apps, schema_editor):
    Price = apps.get_model("ledger", "Price")
    clashes = (
        Price.objects.annotate(lower=Lower("provider"))
        .values("tenant_id", "lower", "model", "effective_from")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    if clashes:
        named = "; ".join(
            f"tenant {c['tenant_id']}: {c['lower']}/{c['model']} from {c['effective_from']}" for c in clashes[:20]
        )
        raise RuntimeError(
            "Prices whose providers differ only in case would clash once stored lowercase; remove one of each "
            f"and migrate again: {named}"
        )
    Price.objects.exclude(provider=Lower("provider")).update(provider=Lower("provider"))


def plain_append_only_again(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in drop_triggers_sql(vendor, TABLE):
        schema_editor.execute(sql)
    append_only(TABLE).code(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0011_bounded_sums"),
    ]

    operations = [
        # reversed, this runs last: after the fields and constraints are gone (rebuilds on SQLite)
        migrations.RunPython(migrations.RunPython.noop, plain_append_only_again),
        migrations.AddField(
            model_name="price",
            name="cached_input_usd_per_mtok",
            field=models.DecimalField(blank=True, decimal_places=6, max_digits=12, null=True),
        ),
        migrations.AddField(
            model_name="usageentry",
            name="cached_input_tokens",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="usageentry",
            index=models.Index(
                condition=models.Q(("cost_source", "unpriced")),
                fields=["tenant", "provider", "model"],
                name="usage_unpriced",
            ),
        ),
        migrations.AddConstraint(
            model_name="price",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("cached_input_usd_per_mtok__isnull", True), ("cached_input_usd_per_mtok__gte", 0), _connector="OR"
                ),
                name="price_cached_not_negative",
            ),
        ),
        migrations.AddConstraint(
            model_name="usageentry",
            constraint=models.CheckConstraint(
                condition=models.Q(("cached_input_tokens__lte", models.F("input_tokens"))),
                name="usage_cached_within_input",
            ),
        ),
        migrations.RunPython(lowercase_price_providers, migrations.RunPython.noop),
        guard_operation(),
    ]
