"""``verify_integrity``: recompute every version's genome hash (``registry.services.integrity_sweep``).

Exit status (``arm.commandutils.ExitCode``): 0 every version VERIFIED, 3 some version is TAMPERED (each
named on stdout), 2 bad usage (an unknown tenant or ``--actor``), 1 the command could not finish.
Progress on stderr on a terminal, or with ``--progress``."""

import time

from arm.commandutils import ArmCommand, problem_found
from arm.validators import terminal_safe
from registry.models import AgentVersion
from registry.services import integrity_sweep
from tenancy.commandutils import command_actor, tenants_for
from tenancy.context import actor_context


class Command(ArmCommand):
    help = (
        "Recompute the genome hash of every version (one tenant with --tenant). Marks each result, records "
        "every failure (INTEGRITY_FAILED, quarantining the version's live instances) and one INTEGRITY_SWEEP "
        "summary per tenant. Exit 0 when every version is VERIFIED, 3 when any is TAMPERED, 2 on bad usage. "
        "Progress goes to stderr on a terminal, or with --progress."
    )
    progress_option = True

    def add_arguments(self, parser):
        parser.add_argument("--tenant")
        parser.add_argument("--actor", help="Username to attribute the records to (default: system)")

    def handle(self, *args, tenant, actor, **options):
        who = command_actor(actor)
        started = time.monotonic()
        tenants = tenants_for(tenant)
        total = AgentVersion.objects.filter(tenant__in=tenants).count()
        progress = self.progress(total, "Verifying")
        checked, tampered, offset = 0, [], 0
        for tenant_obj in tenants:
            with actor_context(who, tenant_obj):
                result = integrity_sweep(
                    tenant=tenant_obj, actor=who, progress=lambda done, base=offset: progress.update(base + done)
                )
            offset += result.checked
            checked += result.checked
            for version, check in result.tampered:
                tampered.append(version)
                self.stdout.write(
                    f"TAMPERED {terminal_safe(tenant_obj.slug)} "
                    f"{terminal_safe(version.template.name)}@{terminal_safe(version.version_label)} "
                    f"id={version.pk} stored={check.stored_hash} computed={check.computed_hash}"
                )
        progress.finish()
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Checked {checked} version(s) in {len(tenants)} tenant(s) in {elapsed:.1f} s: "
            f"{checked - len(tampered)} VERIFIED, {len(tampered)} TAMPERED."
        )
        if tampered:
            problem_found()
