"""``manage.py demo_runtime``: the simulated runtime host of ``demo.runtime`` against a running ARM
(``make run`` starts it beside the server and stops it with it)."""

import random
import signal
import threading

from arm.commandutils import ArmCommand, usage_error
from demo.keys import default_keys_path, read_keys_file
from demo.runtime import INTERVAL, MAX_PENDING, DemoRuntime, HttpTransport, load_plan


class Command(ArmCommand):
    help = (
        "Keep the demo fleet alive through the REST API: batch heartbeats every 30 s, one tool call "
        "evaluated every --interval seconds, usage reports, at most --max-pending approvals waiting. Needs "
        "the keys seed_demo wrote. Ctrl-C (or SIGTERM) stops it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the ARM server (default %(default)s)")
        parser.add_argument("--keys-file", help="the demo runtime file seed_demo wrote (default: the database's)")
        parser.add_argument("--interval", type=float, default=INTERVAL, help="seconds between evaluations (5)")
        parser.add_argument(
            "--max-pending", type=int, default=MAX_PENDING, help="approvals it may keep waiting at once (5)"
        )
        parser.add_argument("--iterations", type=int, help="stop after this many ticks (default: run until stopped)")
        parser.add_argument("--seed", type=int, help="random seed, for a repeatable run")

    def handle(self, *args, url, keys_file, interval, max_pending, iterations, seed, **options):
        if interval <= 0 or max_pending < 0:
            raise usage_error("--interval must be positive and --max-pending at least 0.")
        path = keys_file or default_keys_path()
        data = read_keys_file(path)
        if not data:
            raise usage_error(f"No demo runtime keys at {path}: run `manage.py seed_demo` first.")
        hosts = load_plan(data)

        def say(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        runtime = DemoRuntime(hosts, HttpTransport(url), max_pending=max_pending, rng=random.Random(seed), log=say)
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        beating = sum(len(h.beating) for h in hosts)
        say(
            f"demo runtime: {url}, {len(hosts)} tenant(s), {beating} instances beating, {len(runtime.agents)} "
            f"agents calling tools every {interval:g} s, at most {max_pending} approvals waiting; "
            "Ctrl-C stops it"
        )
        try:
            runtime.run(interval=interval, iterations=iterations, stop=stop)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        runtime.flush()
        say("demo runtime: stopped")
