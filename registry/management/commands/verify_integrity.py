from django.core.management.base import BaseCommand

from arm.commandutils import command_actor, tenants_for
from arm.context import actor_context
from arm.validators import terminal_safe
from registry.choices import IntegrityStatus
from registry.models import AgentVersion
from registry.services import version_verify_integrity


class Command(BaseCommand):
    help = (
        "Recompute the genome hash of every version (one tenant with --tenant). Records each result, "
        "quarantines instances of tampered versions and exits 1 when any version is TAMPERED."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant")
        parser.add_argument("--actor", help="Username to attribute the records to (default: system)")

    def handle(self, *args, tenant, actor, **options):
        who = command_actor(actor)
        checked, tampered = 0, []
        for tenant_obj in tenants_for(tenant):
            versions = AgentVersion.objects.filter(tenant=tenant_obj).select_related("template", "tenant")
            with actor_context(who, tenant_obj):
                for version in versions.iterator(chunk_size=500):
                    result = version_verify_integrity(version=version, actor=who)
                    checked += 1
                    if result.status == IntegrityStatus.TAMPERED:
                        tampered.append(version)
                        self.stdout.write(
                            f"TAMPERED {terminal_safe(tenant_obj.slug)} "
                            f"{terminal_safe(version.template.name)}@{terminal_safe(version.version_label)} "
                            f"id={version.pk} stored={result.stored_hash} computed={result.computed_hash}"
                        )
        self.stdout.write(
            f"Checked {checked} version(s): {checked - len(tampered)} VERIFIED, {len(tampered)} TAMPERED."
        )
        if tampered:
            raise SystemExit(1)
