"""Django's PostgreSQL backend with a health check that costs no round trip (``ENGINE`` when
``DATABASE_URL`` names PostgreSQL; config/settings.py).

With ``CONN_HEALTH_CHECKS`` Django checks a reused connection before each request's first query by
running ``SELECT 1`` on it: a round trip on every request, so that a connection the server closed (a
restart, ``pg_terminate_backend``, ``idle_session_timeout``, a pooler going away) is replaced instead of
failing that request with a 503. A server that closes a connection tells the client first (a FATAL
message, then the end of the stream), so a dead idle connection has something to read on its socket,
and a live idle one has nothing. This check asks the socket without waiting (``select`` with a zero
timeout): nothing to read, the connection is usable; something to read (or a closed socket), Django's
own ``SELECT 1`` check decides, and the connection is closed and reopened when it fails. It saves a
round trip on every request (docs/benchmarks.md). ``close_if_health_check_failed`` is an undocumented
hook of Django's connection: tests/arm/test_database_unavailable.py fails if Django stops calling it or
moves past the pinned 5.2.

What neither check sees is a peer that vanished without closing (a host powered off mid-connection):
``SELECT 1`` would wait for TCP's timeouts there as the request's own query does.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if self.pool or self.connection is None or not self.health_check_enabled or self.health_check_done:
            return super().close_if_health_check_failed()
        if self._idle_socket_is_quiet():
            self.health_check_done = True
            return None
        return super().close_if_health_check_failed()  # SELECT 1, and close the connection if it fails

    def _idle_socket_is_quiet(self) -> bool:
        """True when the connection looks alive: open, idle, and nothing waiting to be read."""
        pgconn = self.connection.pgconn
        if self.connection.closed or pgconn.status != pq.ConnStatus.OK:
            return False
        try:
            readable, _, _ = select.select([pgconn.socket], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable
