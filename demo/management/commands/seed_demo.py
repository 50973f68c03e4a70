"""Lives in the demo app (tooling, above every app) because it seeds every app: registry, then policies
and approvals, then the ledger (prices, budgets and 60 days of usage), then the demo runtime's keys.

Idempotent: a run that finds the demo in place writes nothing (no change record, no key) and says so.
``--reset`` rebuilds it from an empty database (``demo.reset``)."""

from django.db import transaction

from arm.commandutils import ArmCommand
from audit.models import ChangeRecord
from demo.keys import default_keys_path, ensure_runtime_keys
from demo.ledger import seed_ledger_demo
from demo.notifications import seed_notification_demo
from demo.policies import seed_policy_demo
from demo.registry import DEMO_PASSWORD_SUFFIX, demo_password, seed_registry_demo
from demo.reset import CONFIRM_FLAG, reset_database
from tenancy.choices import MEMBER_ROLES
from tenancy.context import Actor, actor_context
from tenancy.models import ApiKey


class Command(ArmCommand):
    help = (
        "Load the demo dataset (idempotent): tenants acme and globex, a user per role with printed demo "
        "passwords, environments, providers, templates, versions in every lifecycle state with lineage, "
        "instances, evaluations, policies, decisions and approvals, with their change records; prices, "
        "budgets and 60 days of usage; the demo runtime's keys. --reset rebuilds it from an empty database. "
        "Each step is named on stderr on a terminal, or with --progress."
    )
    progress_option = True

    def add_arguments(self, parser):
        parser.add_argument(
            "--port", type=int, default=8000, help="the port printed in the sign-in URL (make run PORT=…)"
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="empty the database and seed again (SQLite: deletes the file; PostgreSQL: needs "
            f"{CONFIRM_FLAG} too, as it deletes every tenant)",
        )
        parser.add_argument(
            CONFIRM_FLAG, action="store_true", dest="delete_everything", help="confirm --reset on PostgreSQL"
        )
        parser.add_argument("--keys-file", help="where to keep the demo runtime's keys (default: beside the database)")

    def handle(self, *args, **options):
        keys_path = options["keys_file"] or default_keys_path()
        if options["reset"]:
            self.step("Emptying the database…")
            done = reset_database(keys_path=keys_path, delete_everything=options["delete_everything"])
            self.stdout.write(f"Reset: {done}.")
        before = (ChangeRecord.objects.count(), ApiKey.objects.count())
        with transaction.atomic():
            self.step("Seeding tenants, people, environments, templates, versions and instances…")
            demos = seed_registry_demo()
            system = Actor.system("system:seed_demo")
            with actor_context(system):
                for demo in demos:
                    self.step(f"Seeding {demo.tenant.slug}'s policies, decisions and approvals…")
                    seed_policy_demo(demo.tenant, demo.instances, demo.actors)
                usage = {}
                for demo in demos:
                    self.step(f"Seeding {demo.tenant.slug}'s prices, budgets and 60 days of usage…")
                    usage[demo.tenant.slug] = seed_ledger_demo(demo.tenant, demo.instances)
                for demo in demos:
                    self.step(f"Seeding {demo.tenant.slug}'s notification endpoint (approvers by email)…")
                    seed_notification_demo(demo.tenant, system)
        with transaction.atomic():
            self.step("Minting the demo runtime's keys…")
            minted = ensure_runtime_keys([demo.tenant for demo in demos], keys_path, Actor.system("system:seed_demo"))
        if (ChangeRecord.objects.count(), ApiKey.objects.count()) == before:
            self.stdout.write("Demo already seeded; nothing changed (`manage.py seed_demo --reset` rebuilds it).")
        for demo in demos:
            state = "created" if demo.created else "already present, left as is"
            entries = usage[demo.tenant.slug]["entries"]
            ledger = f", {entries} usage entries over 60 days" if entries else ""
            self.stdout.write(f"Tenant {demo.tenant.slug} ({demo.tenant.name}): {state}{ledger}")
        if minted:
            self.stdout.write(f"Demo runtime keys: {minted} minted, kept in {keys_path} (mode 0600, for demo_runtime)")
        self.stdout.write("")
        self.stdout.write(f"Demo sign-ins (http://127.0.0.1:{options['port']}/accounts/login/):")
        for demo in demos:
            for role in MEMBER_ROLES:
                username = f"{demo.tenant.slug}-{role}"
                self.stdout.write(f"  {username:<20} {demo_password(username):<22} {role} in {demo.tenant.slug}")
        self.stdout.write(
            f"  {'ops':<20} {'ops' + DEMO_PASSWORD_SUFFIX:<22} operator in every demo tenant (tenant switcher)"
        )
        self.stdout.write("Tenant admins (<tenant>-admin) can also use Django admin at /admin/.")
