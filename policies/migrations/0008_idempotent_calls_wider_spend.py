"""The call an idempotency key names (one row per instance and key), and spend counters that cannot
overflow: ``amount_usd`` sums estimates of up to 1,000,000 each; numeric(28,4) widens numeric(16,4) in
place on PostgreSQL (same scale: no rewrite of the values)."""

import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("arm", "0007_username_lower_unique"),
        ("policies", "0007_names_unique_ignoring_case"),
        ("registry", "0006_names_unique_ignoring_case"),
    ]

    operations = [
        migrations.AlterField(
            model_name="instancespend",
            name="amount_usd",
            field=models.DecimalField(decimal_places=4, default=0, max_digits=28),
        ),
        migrations.CreateModel(
            name="IdempotentCall",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("key", models.CharField(max_length=200)),
                ("tool", models.CharField(max_length=200)),
                ("params_hash", models.CharField(max_length=64)),
                ("data_scopes", models.JSONField(blank=True, default=list)),
                ("estimated_cost_usd", models.DecimalField(blank=True, decimal_places=4, max_digits=14, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "decision",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="policies.policydecision"
                    ),
                ),
                (
                    "instance",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="idempotent_calls",
                        to="registry.agentinstance",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="arm.tenant"),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("instance", "key"), name="idempotent_call_one_per_key")
                ],
            },
        ),
    ]
