from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from arm.commandutils import ArmCommand, as_command_error, usage_error
from arm.errors import DomainError
from arm.validators import terminal_safe
from tenancy.choices import MEMBER_ROLES
from tenancy.commandutils import command_actor, get_tenant
from tenancy.context import actor_context
from tenancy.services import (
    membership_set,
    password_link_create,
    user_by_username,
    user_create,
    user_password_set,
)


class Command(ArmCommand):
    help = (
        "Create a user (or reuse an existing one) and give them roles in a tenant: "
        "create_user <username> --tenant <slug> --role <role> [--role <role> ...] [--password PW]"
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--role", action="append", required=True, choices=MEMBER_ROLES, dest="roles")
        parser.add_argument("--password", help="Without it the user cannot sign in until a password is set")
        parser.add_argument("--email", default="")
        parser.add_argument("--actor", help="Username to attribute the change to (default: system)")
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="ARM's address, printed in front of the set-password link (default: %(default)s, make run's)",
        )

    def handle(self, *args, username, tenant, roles, password, email, actor, base_url, **options):
        tenant_obj = get_tenant(tenant)
        who = command_actor(actor)
        try:
            with actor_context(who, tenant_obj), transaction.atomic():
                # the account this name means, whatever its case or Unicode form (``OPS``, ``ＯＰＳ``: ``ops``)
                user = user_by_username(username)
                created = user is None
                if created:
                    user = user_create(username=username, password=password, email=email)
                membership_set(tenant=tenant_obj, user=user, roles=roles, actor=who)
                if not created and password:
                    user_password_set(user=user, password=password, actor=who, via="create_user")
                username = user.get_username()
                user.refresh_from_db()
                link = (
                    None
                    if user.has_usable_password()
                    else password_link_create(tenant=tenant_obj, user=user, actor=who)
                )
        except (ValidationError, DomainError) as exc:
            if "password" in getattr(exc, "error_dict", {}):
                reasons = " ".join(exc.message_dict["password"])
                raise usage_error(terminal_safe(f"--password refused: {reasons}")) from exc
            raise as_command_error(exc) from exc
        except Exception as exc:  # surfaced as a clean command error (exit 1: it could not finish)
            raise CommandError(terminal_safe(str(exc))) from exc
        verb = "Created" if created else "Updated"
        self.stdout.write(
            f"{verb} user {terminal_safe(username)} in {terminal_safe(tenant_obj.slug)} "
            f"with roles {', '.join(sorted(set(roles)))}"
        )
        if user.is_staff and not user.is_superuser:
            self.stdout.write("As a tenant admin they may also use Django admin (/admin/), scoped to their tenants.")
        if link:
            days = settings.PASSWORD_RESET_TIMEOUT // 86400
            self.stdout.write(
                f"No password set yet: send {username} this one-time link to choose one: "
                f"{base_url.rstrip('/')}{link} (it works once, for {days} day{'s' if days != 1 else ''} at most).\n"
                f"Or set one yourself with `manage.py changepassword {username}`; a tenant admin can also make a "
                "new link on the Members page."
            )
