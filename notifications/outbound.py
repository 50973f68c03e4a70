"""Outbound HTTP that cannot be turned against ARM's own network (issue 25 item 6): webhook deliveries and
provider health polls go through ``request``; forms, serializers and models validate with ``check_url``.

- ``check_url``: an absolute ``https`` URL (``http`` only when ``DEBUG`` or ``ARM_OUTBOUND_ALLOW_HTTP``),
  with a host, without credentials in it; a host given as an address (or ``localhost``) must be public.
  Names are not resolved here: what a name resolves to may change after it is saved.
- ``request``: resolves the host, refuses it when ANY of its addresses is loopback, private, link-local,
  multicast, reserved or otherwise not global (unless ``ARM_OUTBOUND_ALLOW_PRIVATE``, or the host or the
  address is in ``ARM_OUTBOUND_ALLOW_HOSTS``: names or CIDR blocks), then connects to the address it
  checked (no second resolution for a rebinding DNS to answer differently), keeping the name for the Host
  header, TLS SNI and the certificate check. Bounded connect and read timeouts and an overall deadline,
  the response body read up to a cap (the rest is dropped), redirects never followed (a 3xx is the
  answer), no proxy from the environment. Errors and logs name the scheme and host only: a Slack incoming
  webhook's path is its secret, and no header is ever logged.
- ``request(..., keep_alive=True)`` (webhook deliveries): the connection is kept open afterwards, per
  thread, for the next request to the same scheme, host and port, as webhook senders do (a TLS handshake
  per event would cost more than the event). It is used again only within ``KEEP_ALIVE_IDLE_SECONDS`` of
  its last answer and ``KEEP_ALIVE_MAX_SECONDS`` of its connect (then the name is resolved and checked
  again), never after a capped answer or one that said ``Connection: close``. A kept connection the
  server closed meanwhile is replaced by a new one for the same request; a receiver may then see it twice
  (deliveries are at least once anyway).
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

USER_AGENT = "ARM-Webhooks/1"
KEEP_ALIVE_IDLE_SECONDS = 4.0  # under the idle timeouts servers commonly keep (Node's 5 s, nginx's 75 s)
KEEP_ALIVE_MAX_SECONDS = 60.0  # a name's resolution and check are trusted no longer than this
KEEP_ALIVE_PER_THREAD = 32  # idle connections one thread keeps at most (the least recently used goes)


class OutboundError(Exception):
    """A request that did not get an answer (refused, unreachable, timed out); the message is safe to show."""


class UnsafeURL(OutboundError, ValueError):
    """A URL ARM refuses to call (its message says why, for the form or API field)."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    latency_ms: int
    truncated: bool = False  # the body was longer than max_bytes (the rest was not read)
    address: str = field(default="", repr=False)


def _allow_http() -> bool:
    return bool(settings.DEBUG or settings.ARM_OUTBOUND_ALLOW_HTTP)


def _allowlist() -> tuple[set[str], list]:
    names, networks = set(), []
    for entry in settings.ARM_OUTBOUND_ALLOW_HOSTS:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return names, networks


def address_refusal(address: str, host: str = "") -> str | None:
    """Why ``address`` may not be called (None: it may). ``host``: the name it was resolved from, which the
    allowlist may name."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if settings.ARM_OUTBOUND_ALLOW_PRIVATE:
        return None
    names, networks = _allowlist()
    if host.lower().rstrip(".") in names or any(ip in network for network in networks):
        return None
    for kind, flag in (
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("an unspecified", ip.is_unspecified),
        ("a private", ip.is_private),
        ("a reserved", ip.is_reserved),
    ):
        if flag:
            return f"{kind} address ({ip})"
    if not ip.is_global:
        return f"a non-public address ({ip})"
    return None


def check_url(url: str) -> str:
    """``url`` when ARM may call it; ``UnsafeURL`` saying why not."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("Enter a URL.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"Not a valid URL: {exc}.") from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeURL("Only https URLs are called.")
    if parts.scheme == "http" and not _allow_http():
        raise UnsafeURL("Use https: plain http is refused outside development (ARM_OUTBOUND_ALLOW_HTTP).")
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("Credentials in a URL are refused: use the endpoint's signing secret.")
    if port == 0:
        raise UnsafeURL("Port 0 cannot be called.")
    host = parts.hostname
    literal = _literal_address(host)
    if literal is None and (host.lower() == "localhost" or host.lower().endswith(".localhost")):
        literal = "127.0.0.1"
    if literal is not None:
        refusal = address_refusal(literal, host)
        if refusal:
            raise UnsafeURL(
                f"{host} is {refusal}: ARM does not call its own network unless ARM_OUTBOUND_ALLOW_PRIVATE "
                "or ARM_OUTBOUND_ALLOW_HOSTS allows it."
            )
    return url


def _literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def where(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what errors and logs name (never the path, query or headers)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), each checked; ``UnsafeURL`` when any is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundError(f"{host} does not resolve ({exc.strerror}).") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise OutboundError(f"{host} does not resolve.")
    for address in addresses:
        refusal = address_refusal(address, host)
        if refusal:
            raise UnsafeURL(f"{host} resolves to {refusal}: refused.")
    return addresses


class _PinnedMixin:
    """Connects to the address checked by ``resolve``, whatever the name resolves to by then; the name
    stays the Host header, the SNI and the name the certificate must carry."""

    def _pin(self, address: str, connect_timeout: float, read_timeout: float) -> None:
        def create_connection(addr, timeout=None, source_address=None):
            sock = socket.create_connection((address, addr[1]), connect_timeout, source_address)
            sock.settimeout(read_timeout)
            return sock

        self._create_connection = create_connection


class _HTTPConnection(_PinnedMixin, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_PinnedMixin, http.client.HTTPSConnection):
    pass


@dataclass
class _Kept:
    connection: http.client.HTTPConnection
    address: str
    connected_at: float
    used_at: float

    def fresh(self, now: float) -> bool:
        return now - self.used_at < KEEP_ALIVE_IDLE_SECONDS and now - self.connected_at < KEEP_ALIVE_MAX_SECONDS


_kept = threading.local()  # {(scheme, host, port): _Kept}: each thread's idle connections


def _kept_connections() -> dict:
    if not hasattr(_kept, "connections"):
        _kept.connections = {}
    return _kept.connections


def _take_kept(key: tuple) -> _Kept | None:
    """This thread's idle connection to ``key`` if it may still be used (the stale ones are closed)."""
    connections, now = _kept_connections(), time.monotonic()
    for other in [k for k, kept in connections.items() if not kept.fresh(now)]:
        connections.pop(other).connection.close()
    return connections.pop(key, None)


def _keep(key: tuple, kept: _Kept) -> None:
    connections = _kept_connections()
    connections[key] = kept
    while len(connections) > KEEP_ALIVE_PER_THREAD:
        connections.pop(next(iter(connections))).connection.close()


def close_kept_connections() -> None:
    """Close this thread's idle connections (a test's or a process's end)."""
    connections = _kept_connections()
    while connections:
        connections.popitem()[1].connection.close()


# What a server that closed an idle kept connection makes the next request on it raise: nothing was
# answered, so the request goes again on a new connection.
_CLOSED_UNDER_US = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
    connect_timeout: float | None = None,
    max_bytes: int | None = None,
    keep_alive: bool = False,
) -> Response:
    """Send one request under the rules above; the answer whatever its status (a 3xx is not followed).
    ``timeout``: the read timeout and, doubled, the deadline for the whole answer; ``keep_alive``: use and
    keep this thread's connection to the host (module docstring). Raises ``UnsafeURL`` (refused) or
    ``OutboundError`` (no answer)."""
    check_url(url)
    timeout = settings.ARM_OUTBOUND_TIMEOUT_SECONDS if timeout is None else timeout
    connect_timeout = settings.ARM_OUTBOUND_CONNECT_TIMEOUT_SECONDS if connect_timeout is None else connect_timeout
    connect_timeout = min(connect_timeout, timeout)
    max_bytes = settings.ARM_OUTBOUND_MAX_RESPONSE_BYTES if max_bytes is None else max_bytes
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    host = parts.hostname
    target = where(url)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    request_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    if body is not None:
        request_headers.setdefault("Content-Length", str(len(body)))
    exchange = _Exchange(method, path, body, request_headers, max_bytes, target)
    key = (parts.scheme, host.lower(), port)
    kept = _take_kept(key) if keep_alive else None
    if kept is not None:
        try:
            return exchange.send(kept, key, keep_alive)
        except _CLOSED_UNDER_US:
            pass  # the server closed it while it was idle: a new connection below
    last_error = None
    for address in resolve(host, port):
        if https:
            connection = _HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            connection = _HTTPConnection(host, port, timeout=timeout)
        connection._pin(address, connect_timeout, timeout)
        started = time.monotonic()
        try:
            connection.connect()
        except OSError as exc:  # unreachable or refused at this address: try the next one
            connection.close()
            last_error = _describe(exc)
            continue
        try:
            return exchange.send(_Kept(connection, address, started, started), key, keep_alive, started)
        except _CLOSED_UNDER_US as exc:
            raise OutboundError(f"{target}: {_describe(exc)}") from None
    raise OutboundError(f"{target}: {last_error or 'no address answered'}")


@dataclass
class _Exchange:
    """One request and its answer on a connection; the connection is kept for the next one when asked and
    the answer allows it, closed otherwise."""

    method: str
    path: str
    body: bytes | None
    headers: dict
    max_bytes: int
    target: str

    def send(self, kept: _Kept, key: tuple, keep_alive: bool, started: float | None = None) -> Response:
        """``started``: when the connection was opened for it (its latency counts the connect)."""
        connection = kept.connection
        started = time.monotonic() if started is None else started
        deadline = started + 2 * connection.timeout
        reuse = False
        try:
            connection.request(self.method, self.path, body=self.body, headers=self.headers)
            answer = connection.getresponse()
            data, truncated = _read_capped(answer, self.max_bytes, deadline)
            latency_ms = int((time.monotonic() - started) * 1000)
            reuse = keep_alive and not truncated and not answer.will_close
            if reuse:
                answer.close()  # the body was read to its end; the connection is ready for the next request
            logger.debug("outbound %s %s -> %s in %d ms", self.method, self.target, answer.status, latency_ms)
            return Response(
                status=answer.status,
                headers={k.lower(): v for k, v in answer.getheaders()},
                body=data,
                latency_ms=latency_ms,
                truncated=truncated,
                address=kept.address,
            )
        except _CLOSED_UNDER_US:
            raise  # the caller decides: a kept connection is replaced, a new one is an error
        except (OSError, http.client.HTTPException) as exc:
            raise OutboundError(f"{self.target}: {_describe(exc)}") from None
        finally:
            if reuse:
                kept.used_at = time.monotonic()
                _keep(key, kept)
            else:
                connection.close()


def _read_capped(answer, max_bytes: int, deadline: float) -> tuple[bytes, bool]:
    chunks, size = [], 0
    while size <= max_bytes:
        if time.monotonic() > deadline:
            raise TimeoutError("the answer took too long")
        chunk = answer.read1(min(65536, max_bytes + 1 - size))
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:max_bytes], True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return f"timed out ({exc})" if str(exc) else "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
