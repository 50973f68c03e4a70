"""The Schedules page: every schedule the worker runs, its last run (when, how long, outcome, message) and
its next, with "Run now". Schedules span every tenant, so the page shows what a run did in counts only
(``schedules.definitions``) and is open to admins of any tenant (and superusers); "Run now" only makes a
schedule due at once (``runner.request_run``), which never runs it twice at once nor queues more runs,
so letting every tenant admin press it costs nothing but an earlier run."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone

from schedules.definitions import DEFINITIONS
from schedules.runner import request_run, schedule_rows
from tenancy.choices import Role
from tenancy.pages import tenant_page

ADMIN = (Role.ADMIN,)


@tenant_page(roles=ADMIN)
def schedule_list(request):
    now = timezone.now()
    rows = []
    for name, row in schedule_rows(now).items():
        row.title = DEFINITIONS[name].title
        row.running = row.is_running(now)
        row.due = row.interval_seconds > 0 and row.next_run_at <= now and not row.running
        rows.append(row)
    return render(request, "schedules/schedules.html", {"schedules": rows, "now": now})


@tenant_page(roles=ADMIN, methods=("POST",))
def schedule_run(request, name: str):
    if name not in DEFINITIONS:
        raise Http404("No such schedule")
    if request_run(name, actor_ref=request.arm_actor.ref):
        messages.success(request, f"{DEFINITIONS[name].title}: the worker runs it now.")
    else:
        messages.info(request, f"{DEFINITIONS[name].title} is already due or running (or turned off): nothing to add.")
    return redirect("ui:schedules")
