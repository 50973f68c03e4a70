"""A live ARM server for end-to-end tests of real HTTP clients (the OpenTelemetry SDK's exporter).

Django's ``LiveServerThread`` (what pytest-django's ``live_server`` runs), but serving from the test's
own database connection and transaction: pytest-django's ``live_server`` needs ``transactional_db``,
whose teardown flushes tables with DELETE, which ARM's append-only triggers (audit trail, ledger)
refuse. Here the server thread shares the test's connection (requests are handled one at a time while
the test waits on its client), nothing closes it, and the test's rollback cleans up as usual.
"""

from __future__ import annotations

import contextlib

from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import close_old_connections, connections
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler, _StaticFilesHandler


class _SharedConnectionServer(ThreadedWSGIServer):
    def _close_connections(self):
        """The connection is the test's: it stays open inside the test transaction."""


class _SharedConnectionThread(LiveServerThread):
    server_class = _SharedConnectionServer

    def run(self):
        for alias, conn in self.connections_override.items():
            connections[alias] = conn
        try:
            self.httpd = self.server_class(
                (self.host, self.port),
                QuietWSGIRequestHandler,
                allow_reuse_address=False,
                connections_override=self.connections_override,
            )
            self.port = self.httpd.server_address[1]
            self.httpd.set_app(self.static_handler(WSGIHandler()))
            self.is_ready.set()
            self.httpd.serve_forever()
        except Exception as exc:  # reported to the test by live_server_in_transaction
            self.error = exc
            self.is_ready.set()


@contextlib.contextmanager
def live_server_in_transaction():
    """Yield the base URL of a live ARM server that sees (and writes into) the test's transaction."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    connection = connections["default"]  # the wrapper itself, not the thread-local proxy
    connection.inc_thread_sharing()
    thread = _SharedConnectionThread("127.0.0.1", _StaticFilesHandler, connections_override={"default": connection})
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    try:
        if thread.error:
            raise thread.error
        yield f"http://127.0.0.1:{thread.port}"
    finally:
        thread.terminate()
        connection.dec_thread_sharing()
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)
