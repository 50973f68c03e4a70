"""``manage.py expire_approvals [--tenant <slug>]``: auto-deny every PENDING approval request past its
deadline (EXPIRED, each with an APPROVAL_EXPIRED change record). Safe to run from cron at any interval;
reads and decisions also expire overdue requests on their own."""

from approvals.services import approvals_expire_due
from arm.commandutils import ArmCommand
from tenancy.commandutils import get_tenant


class Command(ArmCommand):
    help = "Expire (auto-deny) PENDING approval requests past their deadline; prints how many."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (slug); default: every tenant.")

    def handle(self, *args, tenant=None, **options):
        scope = get_tenant(tenant) if tenant else None
        count = approvals_expire_due(tenant=scope)
        self.stdout.write(f"Expired {count} approval request(s).")
