"""Approvals bind the whole call (estimate and data scopes), can be withdrawn, and calls with their own
idempotency keys get their own requests (the one-pending-per-call rule holds for calls without a key).

Requests opened before this migration carry no estimate and no data scopes, so one still PENDING or
APPROVED grants only a call without an estimate (or of 0) and without data scopes: a call that had them
is answered NEEDS_APPROVAL with a new request (the approver sees what is granted, which they did not), and
under the idempotency key of one still PENDING, 409 idempotency_conflict until it is settled."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0003_input_limits"),
        ("arm", "0007_username_lower_unique"),
        ("registry", "0006_names_unique_ignoring_case"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="approvalrequest",
            name="approval_status_valid",
        ),
        migrations.RemoveConstraint(
            model_name="approvalrequest",
            name="approval_one_pending_per_call",
        ),
        migrations.AddField(
            model_name="approvalrequest",
            name="data_scopes",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="approvalrequest",
            name="estimated_cost_usd",
            field=models.DecimalField(blank=True, decimal_places=4, max_digits=14, null=True),
        ),
        migrations.AddField(
            model_name="approvalrequest",
            name="withdrawn_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="approvalrequest",
            name="status",
            field=models.CharField(
                choices=[
                    ("PENDING", "Pending"),
                    ("APPROVED", "Approved"),
                    ("DENIED", "Denied"),
                    ("EXPIRED", "Expired"),
                    ("WITHDRAWN", "Withdrawn"),
                ],
                default="PENDING",
                max_length=10,
            ),
        ),
        migrations.AddConstraint(
            model_name="approvalrequest",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["PENDING", "APPROVED", "DENIED", "EXPIRED", "WITHDRAWN"])),
                name="approval_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="approvalrequest",
            constraint=models.UniqueConstraint(
                condition=models.Q(("idempotency_key", ""), ("status", "PENDING")),
                fields=("instance", "tool", "params_hash"),
                name="approval_one_pending_per_call",
            ),
        ),
    ]
