"""``verify_audit``: verify tenants' chains in the database (incremental from the newest checkpoint, or
``--full`` from genesis); ``--file`` an export made by ``export_audit`` without any database; or
``--checkpoints DIR``: prove that the database still extends every signed checkpoint published to a
witness directory.

Exit status (``arm.commandutils.ExitCode``, the same in every mode): 0 every check holds; 3 a check found a
problem (a broken chain, an edited or cut export, a checkpoint the database does not extend, a forged
checkpoint file); 2 bad usage (an unknown tenant, options that do not go together, a file that is not an
export); 1 the command could not finish. Progress of the database modes on stderr on a terminal, or with
``--progress``."""

from collections import defaultdict
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from arm.commandutils import ArmCommand, problem_found, usage_error
from arm.validators import terminal_safe
from audit import chain, signing
from tenancy.commandutils import get_tenant, tenants_for


class Command(ArmCommand):
    help = (
        "Verify each tenant's audit hash chain (one tenant with --tenant): from the newest checkpoint, or "
        "from genesis with --full; or verify an export file with --file PATH (no database); or check the "
        "database against the signed checkpoints in a witness directory with --checkpoints DIR. Exit 0 when "
        "everything holds, 3 when a check finds a problem, 2 on bad usage, 1 when it cannot finish."
    )
    progress_option = True

    def add_arguments(self, parser):
        parser.add_argument("--tenant")
        parser.add_argument(
            "--full",
            action="store_true",
            help="recompute from genesis and confirm every checkpoint (checkpoints are a performance device)",
        )
        parser.add_argument("--file", help="verify this export_audit file instead; touches no database")
        parser.add_argument(
            "--checkpoints", metavar="DIR", help="prove the database extends every signed checkpoint in DIR"
        )
        parser.add_argument(
            "--public-keys",
            metavar="FILE",
            help="the keys document to trust (/.well-known/arm-audit-keys.json as you archived it); default: "
            "the keys configured on this box",
        )
        parser.add_argument("--anchor", metavar="SEQ:HASH", help="--file: the export must continue from this record")
        parser.add_argument("--expect-head", metavar="SEQ:HASH", help="--file: the export must end at this record")

    def handle(self, *args, tenant, full, file, checkpoints, public_keys, anchor, expect_head, **options):
        if file and checkpoints:
            raise usage_error("--file and --checkpoints are two verifications; run them one at a time.")
        if (anchor or expect_head) and not file:
            raise usage_error("--anchor and --expect-head go with --file.")
        if public_keys and not (file or checkpoints):
            raise usage_error("--public-keys goes with --file or --checkpoints.")
        if file:
            if tenant or full:
                raise usage_error("--file verifies the file alone, without --tenant or --full.")
            return self._verify_file(file, public_keys, anchor, expect_head)
        if checkpoints:
            if full:
                raise usage_error("--checkpoints always recomputes from genesis; --full adds nothing.")
            return self._verify_checkpoints(checkpoints, tenant, public_keys)
        return self._verify_database(tenant, full)

    def _pinned(self, path) -> dict | None:
        """The keys to trust: the file the auditor names, else the ones configured here (None: none)."""
        from audit.keys import pinned_keys

        try:
            return chain.load_public_keys(path) if path else pinned_keys()
        except chain.UsageError as exc:
            raise usage_error(terminal_safe(exc)) from None
        except ImproperlyConfigured as exc:
            raise usage_error(str(exc)) from None

    def _verify_file(self, path, public_keys, anchor, expect_head):
        # No ORM on this path: an export must be checkable where ARM's database is unreachable.
        try:
            result = chain.verify_export(
                path,
                public_keys=self._pinned(public_keys),
                anchor=chain.parse_position(anchor, "--anchor") if anchor else None,
                expect_head=chain.parse_position(expect_head, "--expect-head") if expect_head else None,
            )
        except chain.UsageError as exc:
            raise usage_error(terminal_safe(exc)) from None
        self.stdout.write(result.summary())
        if not result.ok:
            problem_found()

    def _verify_checkpoints(self, directory, tenant, public_keys):
        from audit.services import verify_published
        from audit.witness import read_directory
        from tenancy.models import Tenant

        if not Path(directory).is_dir():
            raise usage_error(f"{terminal_safe(directory)} is not a directory.")
        pinned = self._pinned(public_keys)
        if pinned is None:
            raise usage_error(
                "No public keys to check the checkpoints' signatures with: name the keys document you archived "
                "with --public-keys FILE."
            )
        only = get_tenant(tenant) if tenant else None
        broken, files = False, 0
        published: dict[str, list[dict]] = defaultdict(list)
        for path, document, why in read_directory(directory):
            files += 1
            if document is None:
                broken = True
                self.stdout.write(f"BROKEN {terminal_safe(path)}: {why}")
                continue
            verified = signing.verify_checkpoint(document, pinned)
            if not verified:
                broken = True
                self.stdout.write(f"BROKEN {terminal_safe(path)}: not a genuine checkpoint ({verified.reason})")
                continue
            if only is None or document["tenant"] == str(only.pk):
                published[document["tenant"]].append(document)
        if not files:
            raise usage_error(f"{terminal_safe(directory)} holds no checkpoint (*.json) files.")
        tenants = {str(t.pk): t for t in Tenant.objects.filter(pk__in=list(published))}
        for tenant_id, documents in sorted(published.items(), key=lambda item: str(item[1][0].get("tenant_slug"))):
            tenant_obj = tenants.get(tenant_id)
            if tenant_obj is None:
                broken = True
                slug = terminal_safe(documents[0].get("tenant_slug", ""))
                self.stdout.write(
                    f"BROKEN {slug}: {len(documents)} checkpoint(s) were published for tenant {tenant_id}, which this "
                    "database does not have"
                )
                continue
            bar = self.progress(0, f"Verifying {terminal_safe(tenant_obj.slug)}")
            result = verify_published(tenant_obj, documents, progress=bar.update)
            bar.finish(result.checked)
            broken |= not result.ok
            self.stdout.write(self._published_line(tenant_obj, result))
        if broken:
            problem_found()

    @staticmethod
    def _published_line(tenant_obj, result) -> str:
        slug = terminal_safe(tenant_obj.slug)
        if result.ok:
            return (
                f"OK     {slug}: the database extends all {result.extended} published checkpoint(s) (the last at "
                f"#{result.last_good}); records #1..#{result.to_seq} recomputed from genesis"
            )
        if result.fork:
            return f"BROKEN {slug}: {result.reason}"
        what = (
            f"first broken record #{result.first_broken_seq} ({result.reason})"
            if result.first_broken_seq is not None
            else result.reason
        )
        if result.first_bad is None:
            return f"BROKEN {slug}: {what}; it extends {result.extended} published checkpoint(s) before it"
        last = f"#{result.last_good}" if result.last_good is not None else "none"
        return (
            f"BROKEN {slug}: the database does not extend the checkpoint published at #{result.first_bad}; the last "
            f"checkpoint it extends: {last}; the divergence lies in records {result.divergence}: {what}"
        )

    def _verify_database(self, tenant, full):
        from audit.services import verify_chain

        broken = False
        for tenant_obj in tenants_for(tenant):
            bar = self.progress(0, f"Verifying {terminal_safe(tenant_obj.slug)}")
            result = verify_chain(tenant_obj, full=full, progress=bar.update)
            bar.finish(result.checked)
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
            problem_found()
