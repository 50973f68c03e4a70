"""``manage.py bench``: every hot path measured over real HTTP (gunicorn, production settings) and in
process, on a synthetic tenant in the benchmark's own database. See docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client

from arm.commandutils import ArmCommand, usage_error
from arm.runtime import start_sqlite_checkpointer, tune_gc
from bench import data
from bench.ops import (
    FLOOR_MULTIPLE,
    GOALS_MS,
    SINGLE_OBJECT,
    Pools,
    drafts_needed,
    measure_commit,
    operations,
    run_http,
    run_in_process,
)
from bench.server import HttpSession
from bench.usage import build_rollups
from registry.services import MAX_HEARTBEATS_PER_BATCH


def default_database_url(scale: str) -> str:
    folder = Path(tempfile.gettempdir()) / "arm-bench"
    folder.mkdir(exist_ok=True)
    return f"sqlite:///{folder / f'{scale}.sqlite3'}"


def same_database(url: str) -> bool:
    """Is ``url`` the database this process is configured with (the user's)?"""
    import dj_database_url

    theirs, ours = settings.DATABASES["default"], dj_database_url.parse(url)
    keys = ("ENGINE", "NAME", "HOST", "PORT")
    return all(str(theirs.get(k) or "") == str(ours.get(k) or "") for k in keys)


def ensure_postgres_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=settings.BASE_DIR, capture_output=True, text=True)
        return commit + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


CHILD_VALUES = (
    "scale",
    "workers",
    "worker_class",
    "only",
    "iterations",
    "warmup",
    "load",
    "agents",
    "heartbeat_batch",
    "waiters",
    "waiters_spread",
    "notifications",
    "drain",
    "profile_dir",
    "json_path",
)
CHILD_FLAGS = ("build_only", "no_http", "no_notifications")


def child_argv(options) -> list[str]:
    """The child's command line, from the parsed options (never ``sys.argv``: the command may be called
    from code, e.g. ``call_command`` in a test, whose argv is not ours)."""
    argv = []
    for name in CHILD_VALUES:
        value = options.get(name)
        if value not in (None, ""):
            flag = "--json" if name == "json_path" else "--" + name.replace("_", "-")
            argv.append(f"{flag}={value}")
    argv += ["--" + name.replace("_", "-") for name in CHILD_FLAGS if options.get(name)]
    return [*argv, "--child"]


class Command(ArmCommand):
    help = (
        "Benchmark every hot path over real HTTP (gunicorn on 127.0.0.1, production settings) and in process, "
        "on a synthetic tenant built in the benchmark's own database (never yours); --load runs the fleet mix."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=sorted(data.SCALES), default="small")
        parser.add_argument(
            "--database-url",
            help="the benchmark's database (default: a SQLite file under the temp dir); a PostgreSQL database "
            "is created when missing. Reused when it already holds the tenant at this scale.",
        )
        parser.add_argument("--rebuild", action="store_true", help="delete the SQLite file first (SQLite only)")
        parser.add_argument("--build-only", action="store_true", help="build (or find) the tenant and stop")
        parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (default 1)")
        parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (default sync)")
        parser.add_argument("--iterations", type=int, default=200, help="timed calls per operation")
        parser.add_argument("--warmup", type=int, default=10)
        parser.add_argument("--no-http", action="store_true", help="skip the served measurements")
        parser.add_argument(
            "--only",
            default="",
            metavar="OPS",
            help="measure only these operations (comma-separated names, e.g. heartbeat,evaluate_allow); "
            "the floor is always measured",
        )
        parser.add_argument("--load", type=int, default=0, metavar="SECONDS", help="then run the fleet mix")
        parser.add_argument("--agents", type=int, default=10_000, help="agents in the fleet mix")
        parser.add_argument(
            "--heartbeat-batch",
            type=int,
            default=1,
            metavar="N",
            help="in the fleet mix, agents run on runtime hosts of N agents that send their heartbeats in one "
            "batch request every 30 s (default 1: one request per agent)",
        )
        parser.add_argument(
            "--waiters",
            type=int,
            default=2000,
            metavar="N",
            help="N runtimes waiting on approvals at once through the wait server, woken by their decisions, "
            "with the operations measured again while they are held (default 2000; 0 skips; not with --no-http)",
        )
        parser.add_argument(
            "--waiters-spread",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="the waiters' approvals are decided evenly over this many seconds (default 10)",
        )
        parser.add_argument(
            "--notifications",
            type=int,
            default=200,
            metavar="N",
            help="N approval requests through gunicorn, each timed until its approval.requested webhook reaches a "
            "local receiver through a `manage.py worker` process (default 200; 0 skips; not with --no-http)",
        )
        parser.add_argument(
            "--drain",
            type=int,
            default=2000,
            metavar="N",
            help="a backlog of N events drained by one worker into the receiver, every one checked for (default "
            "2000; 0 skips; not with --no-http)",
        )
        parser.add_argument(
            "--no-notifications", action="store_true", help="skip the notification measurements (both of them)"
        )
        parser.add_argument("--profile-dir", default="", help="pyinstrument profiles of every served request here")
        parser.add_argument("--json", dest="json_path", help="write every figure to this file")
        parser.add_argument("--child", action="store_true", help="(internal) run inside the benchmark database")

    def handle(self, *args, **options):
        if not options["child"]:
            return self.launch(options)
        return self.run(options)

    # ---------------------------------------------------------------- parent: pick and prepare the database

    def launch(self, options) -> None:
        if options["waiters"] < 0 or options["waiters_spread"] < 0:
            raise usage_error("--waiters and --waiters-spread take a number >= 0.")
        if options["notifications"] < 0 or options["drain"] < 0:
            raise usage_error("--notifications and --drain take a number >= 0.")
        if not 1 <= options["heartbeat_batch"] <= MAX_HEARTBEATS_PER_BATCH:
            raise usage_error(f"--heartbeat-batch takes 1 to {MAX_HEARTBEATS_PER_BATCH} agents per request.")
        url = options["database_url"] or default_database_url(options["scale"])
        if same_database(url):
            raise usage_error("The benchmark never runs on your configured database: give another --database-url.")
        if url.startswith("sqlite"):
            path = Path(urlsplit(url).path)
            if options["rebuild"] and path.exists():
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        elif url.startswith("postgres"):
            ensure_postgres_database(url)
        command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "bench", *child_argv(options)]
        self.stderr.write(f"[bench] database: {url}")
        # One secret key for this process tree: sessions made in process are valid for the served workers.
        env = {**os.environ, "DATABASE_URL": url, "ARM_SECRET_KEY": secrets.token_urlsafe(50)}
        result = subprocess.run(command, env=env, check=False)
        if result.returncode:
            raise CommandError(f"the benchmark failed (exit {result.returncode})")

    # ---------------------------------------------------------------- child: build, measure, report

    def run(self, options) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        scale = data.SCALES[options["scale"]]
        tenant = data.existing_tenant(scale)
        if tenant is None:
            tenant = data.build(scale)
        else:
            data.log(f"{scale.name}: reusing the tenant already in this database")
        build_rollups(tenant, scale.name, log=data.log)  # once: the cost reports' 90 days of usage
        if options["build_only"]:
            return
        maintain()
        gc_tuning = tune_gc()  # measure the process as config.wsgi serves it (ARM_GC_TUNING)
        start_sqlite_checkpointer()  # and, on SQLite, with its WAL checkpoints off the request path
        creds = data.credentials(tenant)
        report = {
            "machine": machine(),
            "database": {"vendor": connection.vendor, "version": self.db_version()},
            "scale": scale.__dict__,
            "workers": options["workers"],
            "worker_class": options["worker_class"],
            "git_commit": git_commit(),
            "iterations": options["iterations"],
            "goals_p95_ms": GOALS_MS,
            "gc_tuning": gc_tuning,
        }
        calls = options["iterations"] + options["warmup"] + 1
        waiters = 0 if options["no_http"] else options["waiters"]
        runs = 4 if waiters else 2  # in process, served; with waiters: served while they are held, and after
        data.top_up_drafts(tenant, drafts_needed(calls, runs))  # a reused database may have run out
        pools = Pools(tenant, calls, runs)
        clients = self.clients(creds)
        only = select_operations(options["only"], [op.name for op in operations(pools, "in_process")])
        report["in_process"] = run_in_process(
            operations(pools, "in_process", only), clients, options["iterations"], options["warmup"]
        )
        report["commit_probe"] = measure_commit(max(100, 5 * options["iterations"]))
        server = wait_server = None
        try:
            if not options["no_http"] or options["load"]:
                server = data_server(options)
            if waiters:  # the make serve deployment: gunicorn and the wait server, both up for the whole run
                from bench.server import WaitServer

                wait_server = WaitServer(os.environ["DATABASE_URL"])
            if not options["no_http"]:
                sessions = self.sessions(creds, clients["session"], server.base)
                report["served"] = run_http(
                    operations(pools, "http", only), sessions, options["iterations"], options["warmup"]
                )
                report["served_worker_rss_mib"] = server.worker_rss_mib()
            if waiters:
                from bench.waiters import run_waiters

                report["waiters"] = run_waiters(
                    tenant=tenant,
                    api_base=server.base,
                    wait_server=wait_server,
                    runtime_secret=creds.runtime,
                    approver_secret=creds.approver,
                    count=waiters,
                    spread=options["waiters_spread"],
                    while_held=lambda: run_http(
                        operations(pools, "http_waiters", only), sessions, options["iterations"], options["warmup"]
                    ),
                )
                report["served_with_waiters"] = report["waiters"].pop("served_while_held")
                # once more without waiters: before and after bracket the run with them (a drifting machine shows)
                report["served_after_waiters"] = run_http(
                    operations(pools, "http_after", only), sessions, options["iterations"], options["warmup"]
                )
            notify, drain = notification_counts(options)
            if notify or drain:  # after the operations: its endpoint exists only while it runs
                from bench.notify import run_notifications

                report["notifications"] = run_notifications(
                    tenant=tenant,
                    api_base=server.base,
                    database_url=os.environ["DATABASE_URL"],
                    runtime_secret=creds.runtime,
                    count=notify,
                    drain=drain,
                )
            if options["load"]:
                from bench.load import run_load

                server.peak_rss_kib.clear()
                report["load"] = run_load(
                    base=server.base,
                    tenant=tenant,
                    seconds=options["load"],
                    agents=options["agents"],
                    runtime_key=creds.runtime,
                    approver_key=creds.approver,
                    session=clients["session"].cookies[settings.SESSION_COOKIE_NAME].value,
                    heartbeat_batch=options["heartbeat_batch"],
                )
                report["load"]["peak_rss_mib_per_worker"] = server.worker_rss_mib()
        finally:
            if wait_server is not None:
                wait_server.stop()
            if server is not None:
                server.stop()
        report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        self.print_report(report)
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(report, indent=2, default=str))
            self.stderr.write(f"[bench] figures written to {options['json_path']}")

    def db_version(self) -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
            return cursor.fetchone()[0].split(" on ")[0]

    def clients(self, creds) -> dict:
        session = Client()
        from django.contrib.auth import get_user_model

        session.force_login(get_user_model().objects.get(username=creds.viewer_username))
        return {
            "none": Client(),
            "operator": Client(HTTP_AUTHORIZATION=f"Bearer {creds.operator}"),
            "approver": Client(HTTP_AUTHORIZATION=f"Bearer {creds.approver}"),
            "runtime": Client(HTTP_AUTHORIZATION=f"Bearer {creds.runtime}"),
            "session": session,
        }

    def sessions(self, creds, logged_in: Client, base: str) -> dict:
        cookie = f"{settings.SESSION_COOKIE_NAME}={logged_in.cookies[settings.SESSION_COOKIE_NAME].value}"
        return {
            "none": HttpSession(base),
            "operator": HttpSession(base, {"Authorization": f"Bearer {creds.operator}"}),
            "approver": HttpSession(base, {"Authorization": f"Bearer {creds.approver}"}),
            "runtime": HttpSession(base, {"Authorization": f"Bearer {creds.runtime}"}),
            "session": HttpSession(base, {"Cookie": cookie}),
        }

    def print_report(self, report: dict) -> None:
        w = self.stdout.write
        m, db = report["machine"], report["database"]
        w(
            f"\nARM bench: scale {report['scale']['name']}, {db['vendor']} {db['version']}, "
            f"{report['workers']} {report['worker_class']} worker(s), {m['cpu_count']} x {m['cpu_model']}, "
            f"load average {m['load_average']} -> {m.get('load_average_end')}, commit {report['git_commit'][:12]}, "
            f"GC tuning {'on' if report.get('gc_tuning') else 'off (ARM_GC_TUNING=false)'}"
        )
        inproc, served = report["in_process"], report.get("served", {})
        floor = served.get("floor", {}).get("p95_ms")
        w(
            f"{'operation':<26} {'q':>3} | {'in-process p50/p95/p99 ms':>26} | {'served p50/p95/p99 ms':>24} "
            f"| {'x floor':>7} | {'goal p95':>8}"
        )
        for name, row in inproc.items():
            s = served.get(name)
            served_text = f"{s['p50_ms']:7.2f} {s['p95_ms']:7.2f} {s['p99_ms']:7.2f}" if s else " " * 23
            multiple = f"{s['p95_ms'] / floor:6.1f}x" if s and floor else ""
            goal = GOALS_MS.get(name)
            verdict = ""
            if s and goal:
                verdict = "ok" if s["p95_ms"] <= goal else "OVER"
            if s and floor and name in SINGLE_OBJECT and s["p95_ms"] > FLOOR_MULTIPLE * floor:
                verdict += " >4x"
            w(
                f"{name:<26} {row['queries']:>3} | {row['p50_ms']:7.2f} {row['p95_ms']:7.2f} {row['p99_ms']:7.2f}    "
                f"| {served_text} | {multiple:>7} | {(f'{goal} ms' if goal else ''):>8} {verdict}"
            )
        probe = report.get("commit_probe")
        if probe:
            w(
                f"durable commit probe (BEGIN, one UPDATE, COMMIT; raw SQL in process, {probe['n']} times): "
                f"p50 {probe['p50_ms']:.2f} p95 {probe['p95_ms']:.2f} p99 {probe['p99_ms']:.2f} ms"
            )
        if "served_worker_rss_mib" in report:
            w(f"worker RSS after the served run (MiB): {report['served_worker_rss_mib']}")
        if report.get("waiters"):
            self.print_waiters(report)
        if report.get("notifications"):
            self.print_notifications(report["notifications"])
        load = report.get("load")
        if load:
            batch = load.get("heartbeat_batch", 1)
            senders = "one heartbeat request per agent" if batch == 1 else f"heartbeats in batches of {batch}"
            w(
                f"\nload: {load['agents']} agents for {load['seconds']} s, {senders} "
                f"({load['locust_users']} locust users)"
            )
            for name, row in load["requests"].items():
                w(
                    f"  {name:<26} {row['requests']:>8} req {row['failures']:>5} err {row['rps']:>7} rps  "
                    f"p50 {row['p50_ms']} p95 {row['p95_ms']} p99 {row['p99_ms']} max {row['max_ms']} ms"
                )
            w(f"  peak RSS per worker (MiB): {load['peak_rss_mib_per_worker']}")
            lost = load["lost_writes"]
            w(
                f"  lost-write check: {'OK' if lost['ok'] else 'FAILED'} ({lost['heartbeats']} heartbeats on "
                f"{lost['instances_beaten']} instances, {lost['evaluations']} decisions, "
                f"{lost['approvals_requested']} approvals opened, {lost['approvals_decided']} decided, chain "
                f"{'verifies' if lost['chain_ok'] else 'BROKEN'})"
            )
            for problem in lost["problems"]:
                w(f"    {problem}")
        for line in goal_summary(report):
            w(line)

    def print_waiters(self, report: dict) -> None:
        w, r = self.stdout.write, report["waiters"]
        w(
            f"\nwaiters: {r['count']} waits on the wait server (uvicorn, one process), all read in "
            f"{r['open_seconds']} s; held: {r['held_when_measured']} when the operations were measured, at least "
            f"{r['fewest_held_while_measuring']} meanwhile, {r['held_at_first_decision']} at the first decision; "
            f"{r['rewaits']} re-waits after a timeout, "
            f"{r['retries_503']} 503 retries, {r['errors']} errors"
        )
        latency, upper = r["latency_ms"], r["latency_from_decided_at_ms"]
        if latency:
            verdict = "ok" if latency["p95_ms"] <= WAKE_GOAL_MS else "OVER"
            w(
                f"  woken after the decision committed ({r['answered']} of {r['count']}): p50 {latency['p50_ms']:.1f} "
                f"p95 {latency['p95_ms']:.1f} p99 {latency['p99_ms']:.1f} max {r['max_latency_ms']} ms "
                f"(goal p95 <= {WAKE_GOAL_MS} ms: {verdict}); from decided_at: p95 {upper['p95_ms']:.1f} ms"
            )
        w(
            f"  {r['answered']} decisions in {r['deciding_seconds']} s ({r['decisions_per_s']}/s, spread over "
            f"{r['spread_seconds']} s); wait server: peak RSS {r['wait_server_peak_rss_mib']} MiB, CPU "
            f"{r['wait_server_cpu_opening_s']} s to read the waits, {r['wait_server_cpu_holding_percent']} % of a core "
            f"holding them, {r['wait_server_cpu_deciding_percent']} % while they were decided; database "
            f"connections {r['database_connections']}"
        )
        before, during = report.get("served", {}), report.get("served_with_waiters", {})
        after = report.get("served_after_waiters", {})
        w(
            f"  served p95 ms without waiters (before, after), with them, and with / mean(before, after) "
            f"(goal <= {WAITERS_P95_RATIO:.2f}):"
        )
        for name, row in during.items():
            if name not in before or name not in after:
                continue
            baseline = (before[name]["p95_ms"] + after[name]["p95_ms"]) / 2
            ratio = row["p95_ms"] / baseline if baseline else 0
            flag = "" if ratio <= WAITERS_P95_RATIO else "  over"
            w(
                f"  {name:<26} {before[name]['p95_ms']:9.2f} {after[name]['p95_ms']:9.2f} {row['p95_ms']:9.2f} "
                f"{ratio:6.2f}x{flag}"
            )

    def print_notifications(self, r: dict) -> None:
        from bench.notify import DRAIN_GOAL_PER_S, LATENCY_GOAL_MS

        w = self.stdout.write
        w(
            f"\nnotifications: a webhook endpoint (approval.requested) on a local receiver, `manage.py worker` "
            f"beside gunicorn; {r['receiver_requests']} requests received, {r.get('unverified', 0)} failed the "
            "Standard Webhooks signature check"
        )
        latency = r.get("latency")
        if latency:
            lat, upper = latency["latency_ms"] or {}, latency["latency_from_record_ms"] or {}
            verdict = "ok" if lat and lat["p95_ms"] <= LATENCY_GOAL_MS else "OVER"
            w(
                f"  approval request -> receiver, after the commit ({latency['requests']} requests, one every "
                f"{latency['interval_s']} s): p50 {lat.get('p50_ms', 0):.1f} p95 {lat.get('p95_ms', 0):.1f} "
                f"p99 {lat.get('p99_ms', 0):.1f} max {latency['max_latency_ms']} ms (goal p95 <= {LATENCY_GOAL_MS} "
                f"ms: {verdict}); from the record's time: p95 {upper.get('p95_ms', 0):.1f} ms; "
                f"{latency['not_arrived']} not arrived, {latency['approvals_without_event']} without an event"
            )
        drain = r.get("drain")
        if drain:
            rate = drain["per_second"] or 0
            verdict = "ok" if rate >= DRAIN_GOAL_PER_S else "UNDER"
            w(
                f"  drain: {drain['events']} events (backlog written in {drain['backlog_seconds']} s) through one "
                f"worker: {rate:.0f}/s first to last arrival ({drain['seconds_first_to_last']} s; goal >= "
                f"{DRAIN_GOAL_PER_S}/s: {verdict}), {drain['per_second_from_worker_start']}/s from the worker's "
                f"start; {drain['arrived']} arrived, {drain['deliveries_succeeded']} of {drain['deliveries']} "
                f"deliveries succeeded: {'no loss' if drain['no_loss'] else 'LOSS'}; the worker used "
                f"{drain.get('worker_cpu_seconds')} s of CPU for them ({drain.get('per_cpu_second')} events per "
                "CPU second: what one core of its own would drain)"
            )
            if drain.get("worker_log_tail"):
                w("  the worker's last lines:\n" + drain["worker_log_tail"])


def notification_counts(options) -> tuple[int, int]:
    """(approval requests timed, events drained): both 0 with --no-notifications or --no-http."""
    if options.get("no_notifications") or options.get("no_http"):
        return 0, 0
    return options.get("notifications") or 0, options.get("drain") or 0


# The waiters' goals (SPEC §10): woken <= 250 ms p95 after the commit, the operations' served p95 within 10 %.
WAKE_GOAL_MS = 250
WAITERS_P95_RATIO = 1.10


def over_goals(report: dict) -> list[str]:
    """Every figure of ``report`` over its goal, as ``what (figure > goal)``: an operation's served p95 over
    its goal (OVER), a single-object read over FLOOR_MULTIPLE x the floor (>4x), the waiters' wake-up p95,
    and an operation's served p95 with the waiters held over WAITERS_P95_RATIO x its baseline (over)."""
    over = []
    served = report.get("served", {})
    floor = served.get("floor", {}).get("p95_ms")
    for name in report.get("in_process", {}):
        s, goal = served.get(name), GOALS_MS.get(name)
        if s and goal and s["p95_ms"] > goal:
            over.append(f"{name} served p95 ({s['p95_ms']:.1f} ms > {goal} ms)")
        if s and floor and name in SINGLE_OBJECT and s["p95_ms"] > FLOOR_MULTIPLE * floor:
            over.append(f"{name} served p95 ({s['p95_ms']:.1f} ms > {FLOOR_MULTIPLE}x the floor's {floor:.1f} ms)")
    latency = (report.get("waiters") or {}).get("latency_ms")
    if latency and latency["p95_ms"] > WAKE_GOAL_MS:
        over.append(f"waiters woken p95 ({latency['p95_ms']:.1f} ms > {WAKE_GOAL_MS} ms)")
    over += notification_over_goals(report.get("notifications") or {})
    during, after = report.get("served_with_waiters", {}), report.get("served_after_waiters", {})
    for name, row in during.items():
        if name in served and name in after:
            baseline = (served[name]["p95_ms"] + after[name]["p95_ms"]) / 2
            if baseline and row["p95_ms"] / baseline > WAITERS_P95_RATIO:
                over.append(
                    f"{name} served p95 with waiters ({row['p95_ms'] / baseline:.2f}x > {WAITERS_P95_RATIO:.2f}x)"
                )
    return over


def notification_over_goals(r: dict) -> list[str]:
    """The notification figures over their goals: latency p95 over 1 s, a drain under 1,000/s or with a loss."""
    from bench.notify import DRAIN_GOAL_PER_S, LATENCY_GOAL_MS

    over = []
    latency = (r.get("latency") or {}).get("latency_ms")
    if latency and latency["p95_ms"] > LATENCY_GOAL_MS:
        over.append(f"notification latency p95 ({latency['p95_ms']:.0f} ms > {LATENCY_GOAL_MS} ms)")
    drain = r.get("drain")
    if drain and (drain["per_second"] or 0) < DRAIN_GOAL_PER_S:
        over.append(f"notification drain ({drain['per_second'] or 0:.0f}/s < {DRAIN_GOAL_PER_S}/s)")
    if drain and not drain["no_loss"]:
        over.append(f"notification drain lost events ({drain['arrived']} of {drain['events']} arrived)")
    return over


def goal_summary(report: dict) -> list[str]:
    """The report's last lines: what the marks mean and which figures are over their goals. Goals are targets
    to watch, not assertions: a run with figures over them still exits 0."""
    over = over_goals(report)
    lines = [
        "",
        f"Marks: OVER = a served p95 above its goal (goal p95 column); >{FLOOR_MULTIPLE}x = a single-object read "
        f"above {FLOOR_MULTIPLE}x the floor; over = slowed by the waiters beyond {WAITERS_P95_RATIO:.2f}x. "
        "Goals are targets, not pass/fail: the run does not fail (exit 0) for figures over them.",
    ]
    if over:
        lines.append(f"{len(over)} figure{'s' if len(over) != 1 else ''} over their goals: {'; '.join(over)}.")
    else:
        lines.append("Every figure is within its goal.")
    return lines


def select_operations(raw: str, known: list[str]) -> set[str] | None:
    """``--only``: the operations to measure (None: all of them); an unknown name is refused."""
    names = {name.strip() for name in raw.split(",") if name.strip()}
    if not names:
        return None
    unknown = names - set(known)
    if unknown:
        raise usage_error(f"--only: unknown operation(s) {', '.join(sorted(unknown))}; one of {', '.join(known)}")
    return names | {"floor"}


def data_server(options):
    from bench.server import Gunicorn

    return Gunicorn(
        os.environ["DATABASE_URL"],
        options["workers"],
        worker_class=options["worker_class"],
        profile_dir=options["profile_dir"],
    )


# The tables earlier runs rewrite (versions, heartbeats, decisions, counters, usage and its rollups).
MAINTAINED_TABLES = (
    "registry_agentversion",
    "registry_agentinstance",
    "policies_policydecision",
    "policies_instancespend",
    "policies_decisiondaycount",
    "approvals_approvalrequest",
    "audit_changerecord",
    "ledger_usageentry",
    "ledger_dailyrollup",
    "ledger_templatedayrollup",
    "ledger_instancespanrollup",
)


def maintain() -> None:
    """Measure a maintained database: on PostgreSQL, ``VACUUM (ANALYZE)`` the tables earlier runs
    rewrote, as autovacuum keeps them in production (every run upserts rollups and counters, creates and
    transitions versions; a server run with ``autovacuum = off``, as some development machines are,
    would otherwise measure the previous runs' dead rows and cleared visibility maps, not ARM). SQLite
    needs nothing."""
    if connection.vendor != "postgresql":
        return
    started = time.monotonic()
    with connection.cursor() as cursor:
        for table in MAINTAINED_TABLES:
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")
    data.log(f"vacuumed and analyzed {len(MAINTAINED_TABLES)} tables ({time.monotonic() - started:.0f} s)")
