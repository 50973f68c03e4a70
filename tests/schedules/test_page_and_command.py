"""Every schedule's last run, duration, outcome and next run, for admins: the Schedules page (tenant
admins of any tenant and superusers; "Run now" makes one due) and ``manage.py schedules`` (list, and
``--run NAME`` with the documented exit codes)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from schedules import runner
from schedules.models import Outcome, Schedule

pytestmark = pytest.mark.django_db


def test_admins_see_every_schedule_with_its_last_run(login, admin_member, tenant):
    runner.run_schedule("approval_expiry", force=True)
    html = login(admin_member).get(reverse("ui:schedules")).content.decode()
    assert html.count('data-testid="schedule-row"') == 6
    row = html.split('data-schedule="approval_expiry"', 1)[1].split("</tr>", 1)[0]
    assert "Expire approval requests past their deadline" in row
    assert 'data-status="ok"' in row and " ms</td>" in row and "Expired 0 approval request(s)." in row
    never = html.split('data-schedule="integrity_sweep"', 1)[1].split("</tr>", 1)[0]
    assert "never" in never and "Not run yet." in never and "due now" in never
    assert 'href="/settings/schedules/"' in html  # in the sidebar


def test_another_tenants_admin_sees_the_same_schedules(login, outsider, other_tenant):
    # Schedules span every tenant; nothing on the page belongs to one (messages are counts).
    from tests.helpers import member_with

    admin = member_with(other_tenant, ["admin"], "globex-admin")
    response = login(admin).get(reverse("ui:schedules"))
    assert response.status_code == 200 and response.content.decode().count('data-testid="schedule-row"') == 6


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance"])
def test_members_who_are_not_admins_are_refused(login, cast, role):
    client = login(cast[role])
    assert client.get(reverse("ui:schedules")).status_code == 403
    assert client.post(reverse("ui:schedule_run", args=["approval_expiry"])).status_code == 403


def test_run_now_makes_a_schedule_due_once(login, admin_member):
    runner.run_due()
    client = login(admin_member)
    url = reverse("ui:schedule_run", args=["integrity_sweep"])
    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)
    assert "the worker runs it now" in response.content.decode()
    row = Schedule.objects.get(name="integrity_sweep")
    assert row.next_run_at <= timezone.now() and row.requested_by == f"user:{admin_member.user.username}"
    html = client.post(url, follow=True).content.decode()
    assert "already due or running" in html
    assert client.post(reverse("ui:schedule_run", args=["nope"])).status_code == 404


def command(*args) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("schedules", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # CommandError: the exit code it carries
        code, err = getattr(exc, "returncode", 1), StringIO(str(exc))
    return code, out.getvalue(), err.getvalue()


def test_the_command_lists_every_schedule(counting):
    now = timezone.now()
    runner.run_due(now)
    Schedule.objects.filter(name="tick").update(next_run_at=now + timedelta(minutes=5))
    code, out, _ = command()
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["SCHEDULE", "EVERY", "LAST"]
    tick = next(line for line in lines if line.startswith("tick"))
    assert "60s" in tick and " ok " in tick and "ran 1 time(s)" in tick
    assert "in 4m" in tick or "in 5m" in tick  # the next run, from the moment the command reads it
    broken = next(line for line in lines if line.startswith("broken"))
    assert " failed " in broken and "RuntimeError: the service said no" in broken


def test_run_exit_codes(counting):
    code, out, _ = command("--run", "tick")
    assert code == 0 and out.startswith("tick: ok in ") and out.endswith(" ms. ran 1 time(s)\n")
    assert command("--run", "broken")[0] == 1
    assert command("--run", "problem")[0] == 3
    code, _, err = command("--run", "nope")
    assert code == 2 and "No schedule named 'nope'" in err
    Schedule.objects.filter(name="tick").update(running_until=timezone.now() + timedelta(minutes=1))
    code, _, err = command("--run", "tick")
    assert code == 1 and "running in another worker" in err
    assert Schedule.objects.get(name="problem").last_outcome == Outcome.FAILED
