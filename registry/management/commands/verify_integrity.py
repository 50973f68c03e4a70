import time

from django.core.management.base import BaseCommand

from arm.commandutils import Progress, command_actor, tenants_for
from arm.context import actor_context
from arm.validators import terminal_safe
from registry.models import AgentVersion
from registry.services import integrity_sweep


class Command(BaseCommand):
    help = (
        "Recompute the genome hash of every version (one tenant with --tenant). Marks each result, records "
        "every failure (INTEGRITY_FAILED, quarantining the version's live instances) and one INTEGRITY_SWEEP "
        "summary per tenant; exits 1 when any version is TAMPERED. Progress goes to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant")
        parser.add_argument("--actor", help="Username to attribute the records to (default: system)")

    def handle(self, *args, tenant, actor, **options):
        who = command_actor(actor)
        started = time.monotonic()
        tenants = tenants_for(tenant)
        total = AgentVersion.objects.filter(tenant__in=tenants).count()
        progress = Progress(self.stderr, total, "Verifying")
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
            raise SystemExit(1)
