"""``create_api_key``: here, above tenancy, because ``--instance`` binds the key to an instance, and
that binding is registry's (``registry.InstanceKey``, ``registry.services.api_key_create``)."""

from django.core.exceptions import ValidationError

from arm.commandutils import ArmCommand, as_command_error, usage_error
from arm.validators import terminal_safe
from registry.models import AgentInstance
from registry.services import api_key_create
from tenancy.choices import Role
from tenancy.commandutils import command_actor, get_tenant
from tenancy.context import actor_context


class Command(ArmCommand):
    help = (
        "Create an API key: create_api_key --tenant <slug> --role <role> [--role ...] [--instance <id>] "
        "[--name NAME]. The key is printed alone on the last line, once; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--role", action="append", required=True, choices=Role.values, dest="roles")
        parser.add_argument("--instance", help="Bind the key to one instance (id)")
        parser.add_argument("--name", default="")
        parser.add_argument("--actor", help="Username to attribute the change to (default: system)")

    def handle(self, *args, tenant, roles, instance, name, actor, **options):
        tenant_obj = get_tenant(tenant)
        bound = None
        if instance:
            try:
                bound = AgentInstance.objects.filter(tenant=tenant_obj, pk=instance).first()
            except ValidationError:
                bound = None
            if bound is None:
                raise usage_error(terminal_safe(f"No instance {instance} in tenant {tenant_obj.slug}."))
        who = command_actor(actor)
        try:
            with actor_context(who, tenant_obj):
                key, secret = api_key_create(
                    tenant=tenant_obj, name=name or f"{'+'.join(roles)} key", roles=roles, instance=bound, actor=who
                )
        except ValidationError as exc:
            raise as_command_error(exc) from exc
        self.stdout.write(
            f"Created API key {terminal_safe(key.name)} ({key.prefix}) in {terminal_safe(tenant_obj.slug)}, "
            f"roles {', '.join(key.roles)}."
        )
        self.stdout.write("Store it now; it is not shown again:")
        self.stdout.write(secret)
