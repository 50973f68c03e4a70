"""``manage.py load_fixtures PATH --tenant SLUG [--actor USERNAME]``: load a tenant's environments,
providers, templates with versions, and policies from JSON/YAML files through the services (see
``policies.fixture_loader`` and fixtures/README.md). Idempotent: existing names and versions are skipped
and listed. Lives in the top app (policies) because it writes every app."""

from pathlib import Path

from arm.commandutils import ArmCommand, usage_error
from arm.validators import terminal_safe
from policies.fixture_loader import FixtureError, load_fixtures
from tenancy.commandutils import command_actor, get_tenant


class Command(ArmCommand):
    help = (
        "Load environments, providers, templates (with versions and their genomes) and policies from a "
        "directory of JSON/YAML files into a tenant, through ARM's services (hashes and change records made by "
        "ARM). Re-running skips what exists. Nothing is written when any file is invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="a directory such as fixtures/sample-tenant")
        parser.add_argument("--tenant", required=True, help="the tenant's slug (create it with create_tenant)")
        parser.add_argument("--actor", help="record the changes as this user (default: system)")

    def handle(self, *args, path, tenant, actor=None, **options):
        scope = get_tenant(tenant)
        try:
            report = load_fixtures(Path(path), tenant=scope, actor=command_actor(actor))
        except FixtureError as exc:
            raise usage_error(terminal_safe(str(exc))) from exc
        for line in report.created:
            self.stdout.write(terminal_safe(f"created  {line}"))
        for line in report.skipped:
            self.stdout.write(terminal_safe(f"skipped  {line}"))
        self.stdout.write(
            f"Loaded {path} into {scope.slug}: {len(report.created)} created, {len(report.skipped)} skipped."
        )
