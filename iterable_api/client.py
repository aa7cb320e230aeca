"""``Client`` and ``AsyncClient``: send any catalog action to Iterable, throttled and retried.

Both share everything but the waiting: request building and response reading live in
``_requests``, the retry decision in ``retrying``, the throttle in ``limits``. The twins below only
send, sleep and translate transport failures into this library's errors.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import http.cookiejar
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from prefect_iterable.api._catalog_types import Action, Effect, ResponseKind
from prefect_iterable.api._requests import RawJson, WireRequest, build_request, parse_body
from prefect_iterable.api.catalog import get_action
from prefect_iterable.api.errors import (
    ApiError,
    AuthenticationError,
    ConnectError,
    IterableError,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    ServerError,
    TimeoutError,
    TransportError,
    error_from_response,
)
from prefect_iterable.api.limits import Limiter, ScopeKeys, shared_limiter
from prefect_iterable.api.retrying import RetryPolicy

__all__ = ["REGIONS", "AsyncClient", "Client", "StreamedBody", "AsyncStreamedBody"]

logger = logging.getLogger("prefect_iterable.api")

REGIONS: dict[str, str] = {
    "us": "https://api.iterable.com",
    "eu": "https://api.eu.iterable.com",
}

Region = Literal["us", "eu"]


# As urllib3 does: httpx writes a request's headers and body separately, and with Nagle's
# algorithm the body can wait for the server's delayed ACK (up to 40 ms a request).
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
_JSON_BODY = {"Content-Type": "application/json"}


def _query(wire: WireRequest) -> tuple[tuple[str, str], ...] | None:
    # A tuple: httpx's parameter type takes a sequence of pairs, not our list of str pairs.
    return tuple(wire.query) if wire.query else None


class _NoCookies(http.cookiejar.CookieJar):
    """Keeps no cookie: Iterable's API is keyed by the Api-Key header alone, and reading each
    answer's headers for cookies costs a twentieth of a request's CPU at hundreds a second."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


def _text(response: httpx.Response) -> str:
    """The answer's text. JSON is UTF-8 (RFC 8259), so a JSON answer skips httpx's charset
    detection; anything else is decoded as it declares."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.content.decode("utf-8", errors="replace")
    return response.text


def _key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


#: What a delete answers when its repeat finds the object gone: the delete's own success.
_ALREADY_DONE = {
    "code": "Success",
    "msg": "already done (the answer to an earlier attempt was lost)",
}


class _RepeatGuard:
    """Judges the errors of one call of an action whose repeat Iterable refuses.

    Such a write (``Action.refuses_repeat``) is retried like any write after a 5xx, a timeout or
    a dropped answer, but then Iterable may already have acted: the repeat is refused (400
    already exists, 400 unknown email after a merge, 404 after a delete). That refusal is not a
    failure of the call. A delete whose repeat finds nothing to delete has its result (success);
    any other refusal raises ``OutcomeUnknown`` (probably done: check before doing it again).
    """

    def __init__(self, action: Action) -> None:
        self.action = action
        self.may_have_acted = False

    def judge(self, error: IterableError) -> IterableError | None:
        """The error to raise, or ``None`` when the refusal shows the call's effect holds."""
        if not self.action.refuses_repeat:
            return error
        refused = isinstance(error, ApiError) and 400 <= error.status < 500
        if self.may_have_acted and refused:
            if isinstance(error, (RateLimited, AuthenticationError, PermissionDenied)):
                return error  # refused for another reason than the earlier attempt
            if isinstance(error, NotFound) and self.action.method == "DELETE":
                return None
            why = getattr(error, "code", None) or getattr(error, "status", "")
            outcome = OutcomeUnknown(
                self.action.id,
                f"an attempt whose answer was lost; the repeat was refused ({why}), so the "
                "first one probably took effect",
            )
            outcome.__cause__ = error
            return outcome
        if isinstance(error, (ServerError, TransportError)) and not isinstance(error, ConnectError):
            self.may_have_acted = True
        return error

    def settle(self, error: IterableError) -> Any:
        """The call's result despite ``error`` (a delete found already done), or raise the error
        ``judge`` picks."""
        judged = self.judge(error)
        if judged is None:
            return dict(_ALREADY_DONE)
        if judged is error:
            raise error
        raise judged from error


class _ClientBase:
    _http: httpx.Client | httpx.AsyncClient

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        region: Region = "us",
        base_url: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        project_id: str | None = None,
        organization_id: str | None = None,
        rate_limit_scale: float = 1.0,
        authorize: Callable[[Action, dict[str, Any]], None] | None = None,
    ) -> None:
        self._authorize = authorize
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not self._api_key.get_secret_value():
            raise ValueError("an Iterable API key is required")
        if base_url is None and region not in REGIONS:
            raise ValueError(f"region must be one of {sorted(REGIONS)}, not {region!r}")
        self.base_url = (base_url or REGIONS[region]).rstrip("/")
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = retry or RetryPolicy()
        self.limiter: Limiter = limiter if limiter is not None else shared_limiter(rate_limit_scale)
        key = _key_hash(self._api_key.get_secret_value())
        # Iterable counts by project and organization; without their ids, one key = one project.
        project = project_id or key
        self.scope_keys = ScopeKeys(
            project=project, api_key=key, organization=organization_id or project
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _headers(self) -> dict[str, str]:
        from prefect_iterable.api import __version__

        # httpx adds Content-Type only with a body, so it is set per request.
        return {
            "Api-Key": self._api_key.get_secret_value(),
            "User-Agent": f"prefect-iterable/{__version__}",
        }

    def _prepare(
        self, action: str | Action, params: dict[str, Any] | None, kwargs: dict[str, Any]
    ) -> tuple[WireRequest, Effect]:
        act = get_action(action)
        values = {**(params or {}), **kwargs}
        if self._authorize is not None:
            self._authorize(act, values)
        # A pre-encoded value's items are opaque: its stand-in tells whether a resend is safe.
        shapes = {k: v.stand_in() if isinstance(v, RawJson) else v for k, v in values.items()}
        return build_request(act, values), act.effect_for(shapes)

    def _http_options(self) -> dict[str, Any]:
        """The options of the httpx client this client sends through (sync or async)."""
        return {
            "base_url": self.base_url,
            "headers": self._headers(),
            "cookies": _NoCookies(),
            "timeout": self.timeout,
        }

    def _adopt(self, http: httpx.Client | httpx.AsyncClient) -> None:
        """Send through ``http``, with requests built here rather than by ``build_request``.

        Every request of one client carries the same headers to the same host: they are merged
        once here instead of per request (httpx's merging of URL, headers and cookies costs as
        much CPU as the rest of our request path at hundreds of requests a second).
        """
        self._http = http
        self._plain_headers = http.headers.copy()
        self._json_headers = http.headers.copy()
        self._json_headers.update(_JSON_BODY)
        self._extensions = {"timeout": self.timeout.as_dict()}
        self._urls: dict[str, httpx.URL] = {}

    def _url(self, wire: WireRequest) -> httpx.URL:
        if wire.query:
            return httpx.URL(self.base_url + wire.path, params=_query(wire))
        if "{" in wire.action.path:  # a filled path: users' ids, not worth keeping
            return httpx.URL(self.base_url + wire.path)
        url = self._urls.get(wire.path)
        if url is None:
            url = self._urls[wire.path] = httpx.URL(self.base_url + wire.path)
        return url

    def _httpx_request(self, wire: WireRequest) -> tuple[httpx.Request, list[bytes]]:
        """The request to send, and the list its body is read from, to ``clear()`` once sent.

        A body around pre-encoded values (``RawJson``) goes out in its pieces, so that megabytes
        of them are not copied into one more buffer (with its length given, httpx sends it as
        one plain body, not chunked). httpx leaves every exchange in a reference cycle, freed only
        by the next garbage collection; emptying the list once the body is sent lets the pieces
        go now rather than then. (A body in one piece is small: it stays with the request.)
        """
        parts = wire.content_parts()
        url = self._url(wire)
        if parts is None:
            request = httpx.Request(
                wire.method, url, headers=self._plain_headers, extensions=self._extensions
            )
            return request, []
        if len(parts) == 1:
            request = httpx.Request(
                wire.method,
                url,
                headers=self._json_headers,
                content=parts[0],
                extensions=self._extensions,
            )
            return request, []
        headers = self._json_headers.copy()
        headers["Content-Length"] = str(sum(len(part) for part in parts))
        request = httpx.Request(
            wire.method, url, headers=headers, content=parts, extensions=self._extensions
        )
        return request, parts

    def _unanswered(
        self, wire: WireRequest, effect: Effect, error: httpx.HTTPError, started: float
    ) -> IterableError:
        self._log(wire, type(error).__name__, started)
        return self._failure(wire, effect, error)

    def _refused(
        self, wire: WireRequest, effect: Effect, response: httpx.Response
    ) -> IterableError:
        try:
            text = response.text
        except httpx.ResponseNotRead:  # its body was lost on the way
            text = ""
        return self._error(wire, effect, response, text)

    @staticmethod
    def _failure(wire: WireRequest, effect: Effect, error: httpx.HTTPError) -> IterableError:
        """This library's error for an exchange that got no answer."""
        action = wire.action.id
        if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            return ConnectError(f"could not connect: {type(error).__name__}", action=action)
        cause = f"{type(error).__name__} after the request was sent"
        if effect is Effect.SEND:
            return OutcomeUnknown(action, cause)
        if isinstance(error, httpx.TimeoutException):
            return TimeoutError(cause, action=action)
        return TransportError(cause, action=action)

    def _error(
        self, wire: WireRequest, effect: Effect, response: httpx.Response, text: str
    ) -> IterableError:
        """This library's error for a non-2xx answer."""
        # A proxy or gateway may echo the request's headers into its error page.
        headers = {k.lower(): v for k, v in response.headers.items()}
        error = error_from_response(
            response.status_code,
            headers,
            text,
            action=wire.action.id,
            secret=self._api_key.get_secret_value(),
        )
        if effect is Effect.SEND and response.status_code >= 500:
            # The server may have acted before it failed; only a 429 provably did nothing.
            outcome = OutcomeUnknown(
                wire.action.id, f"HTTP {response.status_code} {error.code or ''}".strip()
            )
            outcome.__cause__ = error
            return outcome
        return error

    @staticmethod
    def _log(wire: WireRequest, status: int | str, started: float) -> None:
        # The path template, not the filled path: filled paths carry emails and user ids.
        logger.info(
            "%s %s %s -> %s in %.0f ms",
            wire.action.id,
            wire.method,
            wire.action.path,
            status,
            (time.perf_counter() - started) * 1000,
        )


def _stream_cut(wire: WireRequest, read: int, exc: Exception) -> TransportError:
    """A stream that broke after ``read`` bytes: named by action and exception type only."""
    return TransportError(
        f"stream cut after {read} bytes: {type(exc).__name__}", action=wire.action.id
    )


class StreamedBody:
    """A successful streaming answer, read line by line so it never sits whole in memory."""

    def __init__(self, wire: WireRequest, response: httpx.Response) -> None:
        self._wire = wire
        self.response = response
        self.bytes_read = 0

    def iter_bytes(self, chunk_size: int = 65_536) -> Iterator[bytes]:
        try:
            for chunk in self.response.iter_bytes(chunk_size):
                self.bytes_read += len(chunk)
                yield chunk
        except httpx.HTTPError as exc:
            raise _stream_cut(self._wire, self.bytes_read, exc) from None

    def iter_text(self) -> Iterator[str]:
        """The body as text, decoded incrementally (a character split across chunks is whole)."""
        try:
            yield from self.response.iter_text()
        except httpx.HTTPError as exc:
            raise _stream_cut(self._wire, self.response.num_bytes_downloaded, exc) from None

    def iter_lines(self) -> Iterator[str]:
        """Each line, without its line ending."""
        for line in _lines(self.iter_text()):
            yield line.rstrip("\r\n")

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """Each record: a JSON object per NDJSON line, or a dict per CSV row.

        CSV goes through the ``csv`` module over the text, so a quoted field may hold newlines.
        """
        if self._wire.action.response is ResponseKind.CSV_STREAM:
            yield from csv.DictReader(_lines(self.iter_text()))
            return
        for line in self.iter_lines():
            if line.strip():
                yield json.loads(line)


def _lines(texts: Iterable[str]) -> Iterator[str]:
    """Lines of streamed text, each with its ending, split at ``\\n`` only.

    Not httpx's ``iter_lines``: it also splits at ``\\r``, U+2028 and the other ``splitlines``
    separators, which a CSV field or an NDJSON string may hold; and ``csv`` needs the endings
    to tell a newline inside quotes from the end of a record.
    """
    rest = ""
    for text in texts:
        rest += text
        if "\n" not in text:
            continue
        *whole, rest = rest.split("\n")
        for line in whole:
            yield line + "\n"
    if rest:
        yield rest


class AsyncStreamedBody:
    """The async twin of ``StreamedBody``."""

    def __init__(self, wire: WireRequest, response: httpx.Response) -> None:
        self._wire = wire
        self.response = response
        self.bytes_read = 0

    async def aiter_bytes(self, chunk_size: int = 65_536) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.aiter_bytes(chunk_size):
                self.bytes_read += len(chunk)
                yield chunk
        except httpx.HTTPError as exc:
            raise _stream_cut(self._wire, self.bytes_read, exc) from None

    async def aiter_lines(self) -> AsyncIterator[str]:
        """Each line, without its line ending; see ``StreamedBody.iter_lines``."""
        rest = ""
        try:
            async for text in self.response.aiter_text():
                rest += text
                if "\n" not in text:
                    continue
                *whole, rest = rest.split("\n")
                for line in whole:
                    yield line.rstrip("\r")
        except httpx.HTTPError as exc:
            raise _stream_cut(self._wire, self.response.num_bytes_downloaded, exc) from None
        if rest:
            yield rest.rstrip("\r")


class Client(_ClientBase):
    """A synchronous Iterable client; one per process or flow, reused across many calls.

    Args:
        api_key: the project's server-side API key.
        region: ``"us"`` or ``"eu"``: the data center the key belongs to.
        base_url: overrides ``region`` (the local sandbox, a proxy).
        timeout: seconds, or an ``httpx.Timeout``.
        retry: how hard to try; see ``RetryPolicy``.
        limiter: the throttle; by default the process-wide token buckets.
        project_id, organization_id: scope keys for limits shared by several API keys.
        rate_limit_scale: multiplies documented rates, for a sandbox that runs its limits faster.
        authorize: called with the action and its Python-named values before anything is sent;
            raises to refuse the call (the credentials block's permissions).
        transport: an ``httpx`` transport, for tests.

    Examples:
        >>> from prefect_iterable.api import Client
        >>> with Client("my-key", base_url="http://127.0.0.1:8765") as client:  # doctest: +SKIP
        ...     client.call("ITERABLE_GET_USER_BY_ID", user_id="u-1")
    """

    _http: httpx.Client

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 20,
        **options: Any,
    ) -> None:
        super().__init__(api_key, **options)
        pool = httpx.Limits(max_connections=max_connections)
        transport = transport or httpx.HTTPTransport(limits=pool, socket_options=_SOCKET_OPTIONS)
        self._adopt(httpx.Client(transport=transport, **self._http_options()))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    def close(self) -> None:
        self._http.close()

    def call(
        self, action: str | Action, params: dict[str, Any] | None = None, /, **kwargs: Any
    ) -> Any:
        """Send ``action`` with Python-named parameters; return its parsed answer.

        JSON answers come back as ``dict``/``list``, bulk answers as ``BulkResult``, CSV as a
        list of row dicts and plain text as ``str``. Errors raise from ``prefect_iterable.api.errors``.
        """
        wire, effect = self._prepare(action, params, kwargs)
        guard = _RepeatGuard(wire.action)

        def attempt() -> Any:
            self.limiter.acquire(wire.action, self.scope_keys)
            try:
                return parse_body(wire.action, self._send(wire, effect))
            except IterableError as error:
                return guard.settle(error)

        return self.retry.run(attempt)

    def _send(self, wire: WireRequest, effect: Effect) -> str:
        return _text(self._exchange(wire, effect))

    @contextlib.contextmanager
    def stream(
        self, action: str | Action, params: dict[str, Any] | None = None, /, **kwargs: Any
    ) -> Iterator[StreamedBody]:
        """Open a streaming answer (exports); the body is read as it is consumed.

        Opening is retried like ``call``; a stream cut part-way raises ``TransportError``.
        """
        wire, effect = self._prepare(action, params, kwargs)

        def attempt() -> httpx.Response:
            self.limiter.acquire(wire.action, self.scope_keys)
            return self._exchange(wire, effect, stream=True)

        response = self.retry.run(attempt)
        try:
            yield StreamedBody(wire, response)
        finally:
            response.close()

    def _exchange(
        self, wire: WireRequest, effect: Effect, *, stream: bool = False
    ) -> httpx.Response:
        """Send ``wire`` once: its 2xx answer (the body still to read with ``stream``), or raise."""
        started = time.perf_counter()
        request, body = self._httpx_request(wire)
        try:
            response = self._http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise self._unanswered(wire, effect, exc, started) from None
        finally:
            body.clear()  # sent (or failed): see _httpx_request
        self._log(wire, response.status_code, started)
        if response.is_success:
            return response
        try:
            response.read()
        except httpx.HTTPError:
            pass  # the error says what it can without the body
        finally:
            response.close()
        raise self._refused(wire, effect, response)


class AsyncClient(_ClientBase):
    """The asyncio twin of ``Client``: same arguments, ``await client.call(...)``."""

    _http: httpx.AsyncClient

    def __init__(
        self,
        api_key: str | SecretStr,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 20,
        **options: Any,
    ) -> None:
        super().__init__(api_key, **options)
        pool = httpx.Limits(max_connections=max_connections)
        transport = transport or httpx.AsyncHTTPTransport(
            limits=pool, socket_options=_SOCKET_OPTIONS
        )
        self._adopt(httpx.AsyncClient(transport=transport, **self._http_options()))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self, action: str | Action, params: dict[str, Any] | None = None, /, **kwargs: Any
    ) -> Any:
        """Send ``action``; see ``Client.call``."""
        wire, effect = self._prepare(action, params, kwargs)
        guard = _RepeatGuard(wire.action)

        async def attempt() -> Any:
            await self.limiter.aacquire(wire.action, self.scope_keys)
            try:
                return parse_body(wire.action, await self._send(wire, effect))
            except IterableError as error:
                return guard.settle(error)

        return await self.retry.arun(attempt)

    async def _send(self, wire: WireRequest, effect: Effect) -> str:
        return _text(await self._exchange(wire, effect))

    @contextlib.asynccontextmanager
    async def stream(
        self, action: str | Action, params: dict[str, Any] | None = None, /, **kwargs: Any
    ) -> AsyncIterator[AsyncStreamedBody]:
        """Open a streaming answer; see ``Client.stream``."""
        wire, effect = self._prepare(action, params, kwargs)

        async def attempt() -> httpx.Response:
            await self.limiter.aacquire(wire.action, self.scope_keys)
            return await self._exchange(wire, effect, stream=True)

        response = await self.retry.arun(attempt)
        try:
            yield AsyncStreamedBody(wire, response)
        finally:
            await response.aclose()

    async def _exchange(
        self, wire: WireRequest, effect: Effect, *, stream: bool = False
    ) -> httpx.Response:
        """Send ``wire`` once; see ``Client._exchange``."""
        started = time.perf_counter()
        request, body = self._httpx_request(wire)
        try:
            response = await self._http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise self._unanswered(wire, effect, exc, started) from None
        finally:
            body.clear()  # sent (or failed): see _httpx_request
        self._log(wire, response.status_code, started)
        if response.is_success:
            return response
        try:
            await response.aread()
        except httpx.HTTPError:
            pass  # the error says what it can without the body
        finally:
            await response.aclose()
        raise self._refused(wire, effect, response)
