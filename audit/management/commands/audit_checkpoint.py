"""``audit_checkpoint``: sign each tenant's chain head (``audit.services.checkpoint_take``) and, with
``--push``, copy the checkpoint to every configured witness. Meant for cron (README: every 10 minutes);
a head that has not moved is not signed again, and its newest checkpoint is pushed again (a no-op where
it already is), so a witness that was down catches up on the next run."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from arm.commandutils import tenants_for
from arm.validators import terminal_safe
from audit.keys import configured_keyring
from audit.services import ChainNotExtended, checkpoint_take
from audit.witness import WitnessError, configured_witnesses


class Command(BaseCommand):
    help = (
        "Sign a checkpoint of each tenant's audit chain head (one tenant with --tenant) with the configured "
        "Ed25519 key; --push copies it to the configured witnesses. Exit 1 when a chain does not extend its "
        "previous checkpoint or a push fails, 2 when signing or witnesses are not configured."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="tenant slug (default: every tenant)")
        parser.add_argument("--push", action="store_true", help="copy each checkpoint to the configured witnesses")

    def handle(self, *args, tenant, push, **options):
        try:
            keyring = configured_keyring()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc), returncode=2) from None
        if keyring.signer is None:
            raise CommandError(
                "No audit signing key is configured (ARM_AUDIT_SIGNING_KEY_FILE or ARM_AUDIT_SIGNING_KEY).",
                returncode=2,
            )
        witnesses = configured_witnesses() if push else []
        if push and not witnesses:
            raise CommandError(
                "--push: no witness is configured (ARM_AUDIT_WITNESS_DIR, ARM_AUDIT_WITNESS_S3_BUCKET or "
                "ARM_AUDIT_WITNESS_WEBHOOK_URL).",
                returncode=2,
            )
        failed = False
        for tenant_obj in tenants_for(tenant):
            slug = terminal_safe(tenant_obj.slug)
            try:
                taken = checkpoint_take(tenant_obj, keyring=keyring)
            except ChainNotExtended as exc:
                failed = True
                self.stdout.write(f"BROKEN {slug}: {terminal_safe(exc.message)}")
                continue
            checkpoint = taken.checkpoint
            if taken.created:
                self.stdout.write(
                    f"SIGNED {slug}: #{checkpoint.seq} {checkpoint.hash} (root {checkpoint.root}, "
                    f"key {checkpoint.key_id}, {checkpoint.time})"
                )
            else:
                self.stdout.write(f"SAME   {slug}: the head #{checkpoint.seq} was signed on {checkpoint.time}")
            document = checkpoint.document(tenant_obj.slug)
            for witness in witnesses:
                try:
                    where = witness.push(document)
                except WitnessError as exc:
                    failed = True
                    self.stdout.write(f"       not pushed to {witness}: {terminal_safe(exc)}")
                else:
                    self.stdout.write(f"       pushed to {terminal_safe(where)}")
        if failed:
            raise SystemExit(1)
