from django.core.management.base import BaseCommand

from arm.commandutils import tenants_for
from arm.validators import terminal_safe
from audit.services import verify_chain


class Command(BaseCommand):
    help = "Recompute each tenant's audit hash chain (one tenant with --tenant); exit 1 on a broken chain."

    def add_arguments(self, parser):
        parser.add_argument("--tenant")

    def handle(self, *args, tenant, **options):
        broken = False
        for tenant_obj in tenants_for(tenant):
            result = verify_chain(tenant_obj)
            if result.ok:
                self.stdout.write(f"OK     {terminal_safe(tenant_obj.slug)}: {result.checked} record(s) verified")
            else:
                broken = True
                self.stdout.write(
                    f"BROKEN {terminal_safe(tenant_obj.slug)}: first broken record #{result.first_broken_seq} "
                    f"({terminal_safe(result.reason)}); {result.checked} record(s) verified before it"
                )
        if broken:
            raise SystemExit(1)
