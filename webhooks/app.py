"""The receiver: an ASGI app that turns Iterable system webhooks into Prefect events.

At-least-once in, at-most-once out. Iterable retries a webhook until it gets a 2xx, so the
receiver answers 200 only once Prefect has the event, and 503 when it could not hand it over
(Prefect down, or too much waiting): Iterable then retries, and nothing is dropped. Events are
sent in batches (one ``POST /events`` for all that arrived while the previous batch was in flight),
so a burst of thousands per second costs a few dozen requests to Prefect. A webhook seen before
(same messageId and eventName, within the dedupe window) is answered 200 and not emitted again.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from prefect_iterable.webhooks.events import message_key, prefect_event

__all__ = [
    "PrefectSender",
    "ReceiverSettings",
    "WebhookReceiver",
    "create_app",
    "post_to_prefect",
]

logger = logging.getLogger("prefect_iterable.webhooks")

Sender = Callable[[list[dict[str, Any]]], Awaitable[None]]


@dataclass(frozen=True)
class ReceiverSettings:
    """How the receiver authenticates and bounds what it accepts.

    Give ``basic_auth`` (``"user:password"``, Iterable's Basic auth type), or ``header_name`` and
    ``header_secret`` (a custom header Iterable sends with a shared secret), or both: a request
    passes if it matches either. With neither, every request is refused unless ``allow_no_auth``.
    """

    basic_auth: str | None = None
    header_name: str | None = None
    header_secret: str | None = None
    allow_no_auth: bool = False
    include_identifiers: bool = False
    seal_key: str | None = None
    max_body_bytes: int = 1_000_000
    dedupe_window_seconds: float = 24 * 3600
    dedupe_max_entries: int = 200_000
    batch_max_events: int = 500
    max_pending_events: int = 20_000
    flush_timeout_seconds: float = 30.0


class _Dedupe:
    """Keys seen within a window, oldest first, at most ``max_entries`` of them."""

    def __init__(self, window: float, max_entries: int) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def seen(self, key: tuple[str, str]) -> bool:
        self._expire()
        return key in self._seen

    def add(self, key: tuple[str, str]) -> None:
        self._seen[key] = time.monotonic()
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)

    def _expire(self) -> None:
        limit = time.monotonic() - self.window
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if at >= limit:
                return
            del self._seen[key]


async def post_to_prefect(events: list[dict[str, Any]]) -> None:
    """Send a batch of events in one ``POST /events`` through Prefect's client; raise on failure."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        await _post_events(client, events)


async def _post_events(client: Any, events: list[dict[str, Any]]) -> None:
    response = await client.request("POST", "/events", json=events)
    response.raise_for_status()


class PrefectSender:
    """The receiver's default ``Sender``: ``post_to_prefect`` over one client kept open.

    Opening Prefect's client (a new connection pool, settings read again) cost more than the
    batch's POST itself, and under a burst every batch paid it. A failed POST closes the client,
    so the next batch starts afresh, e.g. after Prefect's server restarted.
    """

    def __init__(self) -> None:
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, events: list[dict[str, Any]]) -> None:
        from prefect.client.orchestration import get_client

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A client is bound to the loop it was opened in; one left on another is dropped.
            client = get_client()
            await client.__aenter__()
            self._client, self._loop = client, loop
        try:
            await _post_events(self._client, events)
        except Exception:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(None, None, None)


class WebhookReceiver:
    """The ASGI app. ``sender`` hands a batch of events to Prefect (a ``PrefectSender``)."""

    def __init__(self, settings: ReceiverSettings, sender: Sender | None = None) -> None:
        self.settings = settings
        self.sender = sender or PrefectSender()
        self._expected: list[tuple[str, bytes]] = []
        if settings.basic_auth:
            token = base64.b64encode(settings.basic_auth.encode()).decode()
            self._expected.append(("authorization", f"Basic {token}".encode()))
        if settings.header_name and settings.header_secret:
            self._expected.append((settings.header_name.lower(), settings.header_secret.encode()))
        if not self._expected and not settings.allow_no_auth:
            raise ValueError(
                "configure basic_auth or header_name + header_secret (or allow_no_auth)"
            )
        self._dedupe = _Dedupe(settings.dedupe_window_seconds, settings.dedupe_max_entries)
        self._inflight: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._queue: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        # Made here, not per loop: an Event binds to a loop only when first awaited (3.10+).
        self._wakeup = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self.emitted = 0
        self.batches = 0
        self.duplicates = 0

    # ---- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/health" and scope["method"] == "GET":
            await _reply(send, 200, {"status": "ok"})
            return
        if scope["method"] != "POST":
            await _reply(send, 405, {"error": "method not allowed"})
            return
        if not self._authorised(scope):
            # Never say which check failed.
            await _reply(send, 401, {"error": "unauthorized"})
            return
        raw = await self._read_body(scope, receive)
        if raw is None:
            await _reply(send, 413, {"error": "body too large"})
            return
        try:
            bodies = _parse(raw)
            events = [
                (
                    body,
                    prefect_event(
                        body,
                        include_identifiers=self.settings.include_identifiers,
                        seal_key=self.settings.seal_key,
                    ),
                )
                for body in bodies
            ]
        except ValueError as exc:
            await _reply(send, 400, {"error": str(exc)})
            return
        try:
            await self._emit(events)
        except Exception as exc:
            logger.warning("events not handed to Prefect (%s); answering 503", type(exc).__name__)
            await _reply(send, 503, {"error": "events unavailable, retry later"})
            return
        await _reply(send, 200, {"accepted": len(events)})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._flusher is not None:
                    self._flusher.cancel()
                aclose = getattr(self.sender, "aclose", None)
                if aclose is not None:  # a sender that holds a client (PrefectSender) lets it go
                    await aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _authorised(self, scope: dict[str, Any]) -> bool:
        if not self._expected:
            return True
        headers: dict[str, bytes] = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name.decode("latin-1").lower(), value)
        ok = False
        for name, expected in self._expected:
            # Compare every configured way, in constant time, so timing tells nothing either.
            ok |= hmac.compare_digest(headers.get(name, b""), expected)
        return ok

    async def _read_body(self, scope: dict[str, Any], receive: Any) -> bytes | None:
        limit = self.settings.max_body_bytes
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length" and value.isdigit() and int(value) > limit:
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    # ---- dedupe and batching ----------------------------------------------------------------

    async def _emit(self, events: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        waits: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()
        for body, event in events:
            key = message_key(body)
            if key is not None:
                if self._dedupe.seen(key):
                    self.duplicates += 1
                    continue
                if key in self._inflight:
                    # A retry while the first copy is on its way: answer as the first one is.
                    waits.append(self._inflight[key])
                    continue
            if len(self._queue) >= self.settings.max_pending_events:
                raise OverflowError("too many events waiting for Prefect")
            future: asyncio.Future[None] = loop.create_future()
            event["occurred"] = datetime.now(timezone.utc).isoformat()
            self._queue.append((event, future))
            if key is not None:
                self._inflight[key] = future
                future.add_done_callback(functools.partial(self._settled, key))
            waits.append(future)
        if not waits:
            return
        self._start_flusher()
        self._wakeup.set()
        await asyncio.wait_for(
            asyncio.gather(*(asyncio.shield(w) for w in waits)),
            timeout=self.settings.flush_timeout_seconds,
        )

    def _settled(self, key: tuple[str, str], future: asyncio.Future[None]) -> None:
        self._inflight.pop(key, None)
        if not future.cancelled() and future.exception() is None:
            self._dedupe.add(key)

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._wakeup = asyncio.Event()
            self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                size = self.settings.batch_max_events
                batch, self._queue = self._queue[:size], self._queue[size:]
                try:
                    await self.sender([event for event, _ in batch])
                except Exception as exc:  # every waiter answers 503; Iterable will retry
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    self.emitted += len(batch)
                    self.batches += 1
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)


def _parse(raw: bytes) -> list[dict[str, Any]]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body is not valid JSON") from None
    bodies = value if isinstance(value, list) else [value]
    if not bodies or not all(isinstance(b, dict) for b in bodies):
        raise ValueError("the body must be a JSON object (or a list of them)")
    return bodies


async def _reply(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def create_app(settings: ReceiverSettings | None = None, **options: Any) -> WebhookReceiver:
    """The receiver as an ASGI app: ``uvicorn.run(create_app(basic_auth="iterable:…"))``."""
    return WebhookReceiver(settings or ReceiverSettings(**options))
