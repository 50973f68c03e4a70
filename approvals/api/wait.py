"""The wait server: ``GET /api/v1/approvals/{id}/wait/`` served without holding a worker or a database
connection while it waits (``config.asgi`` under uvicorn; ``make serve`` starts it beside gunicorn).

``WaitServer`` wraps Django's ASGI application and takes that one route; everything else goes to Django.
A wait runs the API's ``wait`` action (``ApprovalViewSet.wait``) twice through Django's ordinary
synchronous request handling (every middleware, authentication, tenancy, errors), each time on one of the
process's database threads (``approvals.waiting.WaitHub``):

1. before waiting: authenticate, check the timeout, read the approval (404 for another tenant's, or
   another instance's for a key bound to one). Decided already, ``timeout=0``, or any error: that is the
   answer. Otherwise the action also hands back a deadline (``WaitDeferral``), and its answer is the one
   for a timeout (the approval still PENDING, ``X-ARM-Wait: timeout``);
2. the coroutine then waits, holding only its socket, for the hub to wake it (the decision committed),
   for the deadline (the timeout, or the approval's own expiry), or for the client to go away;
3. not woken by the timeout: the answer of step 1 (nothing changed: a change would have woken it, unless
   the listener is away, when it reads again). Woken, or at the expiry: the action runs once more for the
   final answer, the approval as it is now with ``X-ARM-Wait: decided`` (it authenticates again, so a key
   revoked meanwhile gets its 401). A wait that times out thus costs one read.

The fleet's re-waits were most of what holding waits cost: a wait whose caller waited on the same approval
less than ``waiting.REUSE_SECONDS`` ago, with the same headers (an ``Authorization``, no cookie) and only a
``timeout`` in its query, skips step 1 and holds on that wait's read while nothing can have changed it
(``WaitHub.recall``, where the rules are).

Django's own ASGI handler is not used for this route: with ARM's synchronous middleware it would park a
thread per waiting request for the whole wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.base import BaseHandler
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import set_script_prefix
from django.utils import timezone

from approvals import waiting
from approvals.api.serializers import WaitQuerySerializer

FULL_RETRY_AFTER_SECONDS = 5  # Retry-After of 503 too_many_waiters
WAIT_PATH = re.compile(r"^/api/v1/approvals/(?P<pk>[^/]+)/wait/$")


class WaitDeferral:
    """Set on the request the wait server hands to Django (``request.arm_wait``). In the first pass the
    ``wait`` action, for a PENDING approval, calls ``defer``; in the final pass (``final``) it answers
    whatever the state."""

    def __init__(self, *, final: bool = False):
        self.final = final
        self.until: datetime | None = None
        self.answer_ready = False
        self.expires_at: datetime | None = None

    def defer(self, now: datetime, timeout: float, expires_at: datetime) -> None:
        """The wait ends at the sooner of its timeout and the approval's expiry (``until``). The answer read
        now stands for the timeout (``answer_ready``); at the expiry the approval is read again (EXPIRED)."""
        timed_out = now + timedelta(seconds=timeout)
        self.until, self.answer_ready, self.expires_at = min(timed_out, expires_at), timed_out < expires_at, expires_at


class _Handler(BaseHandler):
    """Django's synchronous request handling (the middleware as gunicorn runs it) for ASGI requests."""

    def __init__(self):
        super().__init__()
        self.load_middleware(is_async=False)

    def respond(self, scope: dict, body: bytes, deferral: WaitDeferral) -> tuple[int, list, bytes]:
        """One request through Django, on a database thread: (status, headers, body)."""
        set_script_prefix(_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        try:  # as Django's ASGI handler builds its requests
            request = ASGIRequest(scope, io.BytesIO(body))
        except UnicodeDecodeError:
            response = HttpResponseBadRequest()
        except RequestDataTooBig:
            response = HttpResponse("413 Payload too large", status=413)
        else:
            request.arm_wait = deferral
            response = self.get_response(request)
        try:
            content = b"".join(response) if response.streaming else response.content
            headers = [(name.encode("ascii"), value.encode("latin1")) for name, value in response.items()]
            headers += [
                (b"Set-Cookie", cookie.output(header="").encode("ascii").strip())
                for cookie in response.cookies.values()
            ]
        finally:
            response.close()  # request_finished: the thread's connection is kept or closed as after any request
        return response.status_code, headers, content


def _script_prefix(scope: dict) -> str:
    if settings.FORCE_SCRIPT_NAME:
        return settings.FORCE_SCRIPT_NAME
    return scope.get("root_path", "") or ""


class WaitServer:
    """ASGI application: the wait route here, everything else to ``django_app`` (Django's ASGI handler)."""

    def __init__(self, django_app):
        self.django_app = django_app
        self._handler: _Handler | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] == "http" and scope["method"] == "GET":
            match = WAIT_PATH.match(_path_info(scope))
            approval_id = _uuid(match["pk"]) if match else None
            if approval_id is not None:
                return await self._wait(approval_id, scope, receive, send)
        return await self.django_app(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                current = waiting.hub(create=False)
                if current is not None:
                    await current.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @property
    def handler(self) -> _Handler:
        if self._handler is None:
            self._handler = _Handler()
        return self._handler

    def _first_read(self, hub: waiting.WaitHub, scope: dict, body: bytes, first: WaitDeferral) -> tuple:
        """(answer, read token) on a database thread: the token is taken as the read begins (all waits
        arriving at once queue for the threads; one taken when queued would keep none read before LISTEN)."""
        token = hub.read_token()
        return self.handler.respond(scope, body, first), token

    async def _wait(self, approval_id: uuid.UUID, scope, receive, send) -> None:
        body = await _read_body(receive)
        hub = waiting.hub()
        waiter = hub.register(approval_id)  # before the first read: a decision committed after it still wakes us
        if waiter is None:
            return await _send(send, *_too_many_waiters(hub.max_waiters))
        try:
            first = WaitDeferral()
            caller, timeout = _reuse_key(scope)
            now = timezone.now()
            read = hub.recall(approval_id, caller, now) if caller is not None else None
            if read is not None:  # this caller's last wait read it PENDING, and nothing has changed it since
                first.defer(now, timeout, read.expires_at)
                answer = read.answer
            else:
                answer, token = await hub.run_sync(self._first_read, hub, scope, body, first)
                if first.until is None:
                    return await _send(send, *answer)
                if caller is not None:
                    hub.remember(waiter, caller, answer, first.expires_at, token)
            if await _hold(hub, waiter, first.until, receive):
                return  # the client went away
            if first.answer_ready and not waiter.event.is_set() and hub.in_sync:
                return await _send(send, *answer)  # timed out, nothing changed
            answer = await hub.run_sync(self.handler.respond, scope, body, WaitDeferral(final=True))
            return await _send(send, *answer)
        finally:
            hub.unregister(waiter)


def _reuse_key(scope: dict) -> tuple[bytes | None, float | None]:
    """(caller, timeout) of a wait that may reuse its caller's last read: a key's (an ``Authorization``
    header, no cookie: a session may end unseen) asking for nothing but a valid ``timeout`` above 0. The
    caller is a digest of the request's headers (the key, and whatever else could shape the answer).
    (None, None) for any other wait: it runs the action."""
    headers = [(name, value) for name, value in scope["headers"] if name != b"connection"]
    names = {name for name, _ in headers}
    if b"authorization" not in names or b"cookie" in names:
        return None, None
    try:
        query = parse_qsl(scope.get("query_string", b"").decode("ascii"), keep_blank_values=True)
    except UnicodeDecodeError:
        return None, None
    if len(query) != 1 or query[0][0] != "timeout":
        return None, None
    valid = WaitQuerySerializer(data={"timeout": query[0][1]})
    if not valid.is_valid() or valid.validated_data["timeout"] <= 0:
        return None, None
    digest = hashlib.sha256()
    for name, value in headers:
        digest.update(b"%d:%s%d:%s" % (len(name), name, len(value), value))
    return digest.digest(), valid.validated_data["timeout"]


async def _hold(hub: waiting.WaitHub, waiter: waiting.Waiter, until: datetime, receive) -> bool:
    """Hold the wait until it is woken or ``until`` passes; True when the client went away first."""
    held = asyncio.ensure_future(hub.hold(waiter, until))
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait({held, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        held.cancel()
        gone.cancel()
    return gone in done and not held.done()


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(receive) -> bytes:
    """The request body (a GET's is normally empty), kept up to the API's limit; Django answers 413 beyond."""
    limit = settings.ARM_MAX_BODY_BYTES + 1
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        if size < limit:
            parts.append(chunk[: limit - size])
            size += len(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _send(send, status: int, headers: list, content: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def _too_many_waiters(limit: int) -> tuple[int, list, bytes]:
    body = json.dumps(
        {
            "code": "too_many_waiters",
            "message": f"This server holds {limit} waits already (ARM_WAIT_MAX_WAITERS). Retry after a few "
            "seconds, or poll GET /api/v1/approvals/{id}/.",
        }
    ).encode()
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Content-Length", str(len(body)).encode()),
        (b"Retry-After", str(FULL_RETRY_AFTER_SECONDS).encode()),
        (b"Cache-Control", b"no-store, private"),
    ]
    return 503, headers, body


def _path_info(scope: dict) -> str:
    path, root = scope["path"], scope.get("root_path", "") or ""
    return path[len(root) :] if root and path.startswith(root) else path


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None  # Django answers it (404), as it answers any malformed id
