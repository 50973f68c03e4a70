"""``audit_checkpoint``: sign each tenant's chain head (``audit.services.checkpoint_take``) and, with
``--push``, copy the checkpoint to every configured witness. Meant for cron (README: every 10 minutes);
a head that has not moved is not signed again, and its newest checkpoint is pushed again (a no-op where
it already is), so a witness that was down catches up on the next run.

Exit status (``arm.commandutils.ExitCode``): 0 every head signed (or already signed) and pushed; 3 a
chain does not extend its previous checkpoint (nothing is signed over it), or a witness holds a different
checkpoint at the same seq (two histories were signed); 1 a push failed otherwise (the witness could not
be reached or written: the next run pushes again); 2 bad usage (an unknown tenant, no signing key or no
witness configured). Progress of the re-read on stderr on a terminal, or with ``--progress``."""

from django.core.exceptions import ImproperlyConfigured

from arm.commandutils import ArmCommand, ExitCode, problem_found, usage_error
from arm.validators import terminal_safe
from audit.keys import configured_keyring
from audit.services import ChainNotExtended, checkpoint_take
from audit.witness import WitnessConflict, WitnessError, configured_witnesses
from tenancy.commandutils import tenants_for


class Command(ArmCommand):
    help = (
        "Sign a checkpoint of each tenant's audit chain head (one tenant with --tenant) with the configured "
        "Ed25519 key; --push copies it to the configured witnesses. Exit 3 when a chain does not extend its "
        "previous checkpoint or a witness holds a different checkpoint, 1 when a push fails otherwise, 2 on bad "
        "usage (signing or witnesses not configured)."
    )
    progress_option = True

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="tenant slug (default: every tenant)")
        parser.add_argument("--push", action="store_true", help="copy each checkpoint to the configured witnesses")

    def handle(self, *args, tenant, push, **options):
        try:
            keyring = configured_keyring()
        except ImproperlyConfigured as exc:
            raise usage_error(str(exc)) from None
        if keyring.signer is None:
            raise usage_error(
                "No audit signing key is configured (ARM_AUDIT_SIGNING_KEY_FILE or ARM_AUDIT_SIGNING_KEY)."
            )
        witnesses = configured_witnesses() if push else []
        if push and not witnesses:
            raise usage_error(
                "--push: no witness is configured (ARM_AUDIT_WITNESS_DIR, ARM_AUDIT_WITNESS_S3_BUCKET or "
                "ARM_AUDIT_WITNESS_WEBHOOK_URL)."
            )
        broken = not_pushed = False
        for tenant_obj in tenants_for(tenant):
            slug = terminal_safe(tenant_obj.slug)
            bar = self.progress(0, f"Reading {slug}")
            try:
                taken = checkpoint_take(tenant_obj, keyring=keyring, progress=bar.update)
            except ChainNotExtended as exc:
                broken = True
                self.stdout.write(f"BROKEN {slug}: {terminal_safe(exc.message)}")
                continue
            finally:
                bar.finish()
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
                    broken |= isinstance(exc, WitnessConflict)
                    not_pushed = True
                    self.stdout.write(f"       not pushed to {witness}: {terminal_safe(exc)}")
                else:
                    self.stdout.write(f"       pushed to {terminal_safe(where)}")
        if broken:
            problem_found()
        if not_pushed:
            raise SystemExit(int(ExitCode.FAILED))
