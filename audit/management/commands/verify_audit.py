"""``verify_audit``: verify tenants' chains in the database (incremental from the newest checkpoint, or
``--full`` from genesis), or ``--file`` an export made by ``export_audit`` without any database."""

from django.core.management.base import BaseCommand, CommandError

from arm.validators import terminal_safe
from audit import chain


class Command(BaseCommand):
    help = (
        "Verify each tenant's audit hash chain (one tenant with --tenant): from the newest checkpoint, or "
        "from genesis with --full; or verify an export file with --file PATH (no database). Exit 1 on a "
        "broken chain or file."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant")
        parser.add_argument(
            "--full",
            action="store_true",
            help="recompute from genesis and confirm every checkpoint (checkpoints are a performance device)",
        )
        parser.add_argument("--file", help="verify this export_audit file instead; touches no database")

    def handle(self, *args, tenant, full, file, **options):
        if file:
            if tenant or full:
                raise CommandError("--file verifies the file alone, without --tenant or --full.", returncode=2)
            return self._verify_file(file)
        return self._verify_database(tenant, full)

    def _verify_file(self, path):
        # No ORM on this path: an export must be checkable where ARM's database is unreachable.
        try:
            result = chain.verify_export(path)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}", returncode=2) from None
        self.stdout.write(result.summary())
        if not result.ok:
            raise SystemExit(1)

    def _verify_database(self, tenant, full):
        from arm.commandutils import tenants_for
        from audit.services import verify_chain

        broken = False
        for tenant_obj in tenants_for(tenant):
            result = verify_chain(tenant_obj, full=full)
            if not result.ok:
                broken = True
                self.stdout.write(
                    f"BROKEN {terminal_safe(tenant_obj.slug)}: first broken record #{result.first_broken_seq} "
                    f"({terminal_safe(result.reason)}); {result.checked} record(s) verified before it "
                    f"(checking #{result.from_seq}..#{result.to_seq}{', full' if result.full else ''})"
                )
            elif result.full:
                self.stdout.write(
                    f"OK     {terminal_safe(tenant_obj.slug)}: {result.checked} record(s) verified "
                    f"(#1..#{result.to_seq} from genesis; {result.checkpoints_confirmed} checkpoint(s) confirmed)"
                )
            else:
                self.stdout.write(
                    f"OK     {terminal_safe(tenant_obj.slug)}: {result.to_seq} record(s) verified: "
                    f"#{result.from_seq}..#{result.to_seq} recomputed now ({result.checked}), the ones before by "
                    f"the checkpoint at #{result.from_seq} of {result.anchor_verified_at.isoformat()} "
                    "(--full recomputes from genesis)"
                )
        if broken:
            raise SystemExit(1)
