from django.core.exceptions import ValidationError

from arm.commandutils import ArmCommand, as_command_error
from arm.validators import terminal_safe
from tenancy.commandutils import command_actor
from tenancy.context import actor_context
from tenancy.services import tenant_create


class Command(ArmCommand):
    help = "Create a tenant: create_tenant <slug> [--name NAME]"

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--actor", help="Username to attribute the change to (default: system)")

    def handle(self, *args, slug, name, actor, **options):
        who = command_actor(actor)
        try:
            with actor_context(who):
                tenant = tenant_create(slug=slug, name=name, actor=who)
        except ValidationError as exc:
            raise as_command_error(exc) from exc
        self.stdout.write(f"Created tenant {terminal_safe(tenant.slug)} ({terminal_safe(tenant.name)}) id={tenant.pk}")
