"""The sandbox as an ASGI app: a local Iterable that authenticates, throttles, fails on request and
keeps state per project.

Every request under ``/api`` goes through the same steps: route by the catalog's method and path,
authenticate the ``Api-Key``, log it, apply an injected fault, enforce the documented rate limit
and body cap, parse the body, run the area's handler. ``/_sandbox/*`` is the control surface tests
and demos use (faults, log, reset, projects, settings); it needs no key.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import importlib
import json
import pkgutil
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs, quote

import orjson

from prefect_iterable.api.catalog import ACTIONS, Action, Scope
from prefect_iterable.sandbox import handlers as _handlers_pkg
from prefect_iterable.sandbox import system_webhooks
from prefect_iterable.sandbox.handlers._base import HANDLERS, ApiFailure, Call, Reply, Stream
from prefect_iterable.sandbox.limits import RateLimits
from prefect_iterable.sandbox.state import Fault, Project, SandboxState

DEMO_API_KEY = "sandbox-demo-key"

# The log's name for an export file download (a pre-signed URL, not an API action); faults
# injected under this name apply to downloads.
DOWNLOAD = "EXPORT_FILE_DOWNLOAD"

# users/update and users/bulkUpdate say how long to wait in their 429s (Iterable's 2026 spec).
_RESET_HINT = {"ITERABLE_BULK_UPDATE_USERS", "ITERABLE_UPDATE_USER"}

# Bodies larger than this are logged by size only, so a bulk benchmark does not fill memory.
_LOGGED_BODY_BYTES = 256 * 1024


def _route_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")


# Literal paths first, so /api/campaigns/metrics is not read as /api/campaigns/{id}.
_ROUTES: list[tuple[str, re.Pattern[str], Action]] = sorted(
    ((a.method, _route_pattern(a.path), a) for a in ACTIONS),
    key=lambda r: (r[2].path.count("{"), -len(r[2].path)),
)
# The literal paths by (method, path): a hot path (users/update, events/track) is found at once
# instead of after a hundred patterns.
_LITERAL: dict[tuple[str, str], Action] = {
    (a.method, a.path): a for a in reversed(ACTIONS) if "{" not in a.path
}


def _load_handlers() -> None:
    for module in pkgutil.iter_modules(_handlers_pkg.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{_handlers_pkg.__name__}.{module.name}")


def _error_body(code: str, msg: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"msg": msg, "code": code, "params": params}


class Sandbox:
    """A local Iterable. One instance is one world: its projects, data, limits, faults and log.

    Args:
        time_scale: runs rate limits, export jobs and URL expiry this many times faster.
        limits: enforce the documented rate limits (off for overhead benchmarks).
        base_url: where the sandbox is served, for the download URLs it hands out.
    """

    def __init__(self, *, time_scale: float = 1.0, limits: bool = True) -> None:
        _load_handlers()
        self.time_scale = time_scale
        self.limits_enabled = limits
        self.limits = RateLimits(time_scale)
        self.state = SandboxState()
        self.base_url = "http://127.0.0.1"
        self._install_default_projects()

    def _install_default_projects(self) -> None:
        self.state.add_project(DEMO_API_KEY, Project(1001, "demo", organization_id=1))
        self.state.add_project(
            "sandbox-userid-key",
            Project(1002, "userid-project", organization_id=1, identity="userId"),
        )
        self.state.add_project(
            "sandbox-hybrid-key",
            Project(1003, "hybrid-project", organization_id=1, identity="hybrid"),
        )
        self.state.add_project(
            "sandbox-basic-key",
            Project(1004, "basic-project", organization_id=2, features=set()),
        )

    def reset(self) -> None:
        """Forget all data, faults, limits and the log; keep the projects and their keys."""
        for project in self.state.projects.values():
            project.areas.clear()
        self.state.faults.clear()
        self.state.log.clear()
        self.limits.reset()

    def add_project(self, api_key: str, **fields: Any) -> Project:
        """Create a project reachable with ``api_key`` (tests use a random key per test)."""
        project_id = fields.pop("id", None) or max(self.state.projects) + 1
        fields.setdefault("name", f"project-{project_id}")
        fields.setdefault("organization_id", 1)
        if "features" in fields:
            fields["features"] = set(fields["features"])
        return self.state.add_project(api_key, Project(project_id, **fields))

    def inject(self, action: str, kind: str, count: int = 1, **options: Any) -> Fault:
        """Make the next ``count`` requests of ``action`` fail with ``kind`` (see ``Fault``)."""
        if kind == "delay":
            options["after_processing"] = True
        fault = Fault(action=action, kind=kind, count=count, **options)
        self.state.faults.append(fault)
        return fault

    def scaled(self, seconds: float) -> float:
        """A duration of Iterable's, as this sandbox runs it."""
        return seconds / self.time_scale

    # ---- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/_sandbox/"):
            await self._control(scope, receive, send)
        elif path.startswith("/_files/") and scope["method"] == "GET":
            # Export file downloads: pre-signed URLs, no API key (as Iterable's S3 links).
            await self._download(send, path.removeprefix("/_files/"))
        else:
            await self._api(scope, receive, send)

    async def _api(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method, path = scope["method"], scope["path"]
        # Routed on the encoded path: a %2F inside a userId is part of the segment, not a "/".
        raw_path = (scope.get("raw_path") or path.encode()).decode("latin-1")
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
        raw = await _read_body(receive)
        action, path_params = self._route(method, raw_path)
        api_key = headers.get("api-key") or headers.get("api_key")
        project = self.state.project_for_key(api_key)
        entry = self.state.record(
            action=action.id if action else None,
            method=method,
            path=path,
            raw_path=raw_path,
            query=query,
            body=_json_or_text(raw),
            project_id=project.id if project else None,
        )
        try:
            if action is None:
                entry.status = 404
                page = (
                    "<html><head><title>404 Not Found</title></head><body>Not Found</body></html>"
                )
                await self._send_reply(send, Reply(page, 404, "text/html"))
                return
            if project is None:
                raise ApiFailure(401, "BadApiKey", "Invalid API key")
            fault = self.state.take_fault(action.id, after_processing=False)
            if fault is not None:
                entry.fault = fault.kind
                if await self._apply_fault(fault, send, entry, api_key):
                    return
            self._enforce_limits(action, project, api_key or "")
            if action.max_body_bytes is not None and len(raw) > action.max_body_bytes:
                raise ApiFailure(
                    400, "BatchTooLarge", f"Request body exceeds {action.max_body_bytes} bytes"
                )
            body = _parse_json(raw) if raw else None
            handler = HANDLERS.get(action.id)
            if handler is None:
                raise ApiFailure(404, "NotFound", f"{action.id} is not served by this sandbox")
            result = handler(Call(self, project, action.id, path_params, query, body, path))
            if asyncio.iscoroutine(result):
                result = await result
            entry.processed = True
        except ApiFailure as failure:
            entry.status = failure.status
            refusal = Reply(_error_body(failure.code, failure.msg, failure.params), failure.status)
            if failure.status == 429 and failure.params and "retryAfter" in failure.params:
                refusal.headers["retry-after"] = str(failure.params.pop("retryAfter"))
            await self._send_reply(send, refusal)
            return
        late = self.state.take_fault(action.id, after_processing=True)
        if late is not None:
            entry.fault = late.kind
            if await self._apply_fault(late, send, entry, api_key):
                return
        reply = result if isinstance(result, (Reply, Stream)) else Reply(result)
        entry.status = reply.status
        await self._send_reply(send, reply, cut=entry.fault == "cut")

    async def _download(self, send: Any, token_path: str) -> None:
        """Serve an export file; ``inject(DOWNLOAD, "cut")`` drops one mid-file, as a network
        failure would (downloads are not API actions, but a fault can still reach them)."""
        from prefect_iterable.sandbox.handlers.exports import download

        reply = download(self, token_path)
        fault = self.state.take_fault(DOWNLOAD) if isinstance(reply, Stream) else None
        cut = fault is not None and fault.kind == "cut"
        if cut and isinstance(reply, Stream) and isinstance(reply.chunks, Iterator):
            # Small pieces, so the cut lands inside the file rather than after its first chunk.
            reply = Stream(_pieces(reply.chunks, 4096), reply.media_type, reply.status)
            self.state.log[-1].fault = "cut"
        await self._send_reply(send, reply, cut=cut)

    def _route(self, method: str, path: str) -> tuple[Action | None, dict[str, str]]:
        from urllib.parse import unquote

        literal = _LITERAL.get((method, path))
        if literal is not None:
            return literal, {}
        for route_method, pattern, action in _ROUTES:
            if route_method == method:
                match = pattern.match(path)
                if match:
                    return action, {k: unquote(v) for k, v in match.groupdict().items()}
        return None, {}

    def _enforce_limits(self, action: Action, project: Project, api_key: str) -> None:
        if not self.limits_enabled:
            return
        scope_keys = {
            Scope.PROJECT: f"p{project.id}",
            Scope.API_KEY: f"k{hash(api_key)}",
            Scope.ORGANIZATION: f"o{project.organization_id}",
        }
        if action.daily_cap is not None:
            cap = project.forget_daily_cap if "forget" in action.path else action.daily_cap.requests
            wait = self.limits.take_daily(action.endpoint, scope_keys[action.daily_cap.scope], cap)
            if wait is not None:
                raise ApiFailure(
                    429,
                    "RateLimitExceeded",
                    f"Daily cap of {cap} requests exceeded for endpoint: {action.path}, "
                    f"project: {project.id}",
                    {"rateLimitReset": round(wait, 3)},
                )
        limit = action.limit
        if limit is None:
            return
        key = scope_keys[limit.scope]
        wait = self.limits.take(action.endpoint, key, limit.requests, limit.period.value)
        if wait is None:
            return
        params: dict[str, Any] = {}
        if action.id in _RESET_HINT:
            params = {
                "rateLimitLimit": limit.requests,
                "rateLimitRemaining": 0,
                "rateLimitReset": round(wait, 3),
            }
        raise ApiFailure(
            429,
            "RateLimitExceeded",
            f"Exceeded rate limit for endpoint: {action.path}, project: {project.id} ",
            params,
        )

    async def _apply_fault(
        self, fault: Fault, send: Any, entry: Any, api_key: str | None = None
    ) -> bool:
        """Carry out a fault; ``True`` if it answered (or dropped) the request itself."""
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            return False
        if fault.kind == "cut":
            return False  # applied while streaming the body
        if fault.kind == "reset":
            entry.status = -1
            _drop_connection(send)
            return True
        if fault.kind == "429":
            params = {"rateLimitReset": fault.retry_after} if fault.retry_after is not None else {}
            reply = Reply(
                _error_body("RateLimitExceeded", "Exceeded rate limit (injected)", params), 429
            )
        elif fault.kind == "503":
            reply = Reply(
                "Service Unavailable: request timeout. Try again later.", 503, "text/plain"
            )
        elif fault.kind == "error":
            reply = Reply(_error_body(fault.code, fault.msg, fault.params), fault.status)
        elif fault.kind == "echo":
            reply = Reply(_echo_page(fault, api_key or ""), fault.status, "text/plain")
        elif fault.kind == "html":
            page = (
                f"<html><head><title>{fault.status} {fault.msg}</title></head><body></body></html>"
            )
            reply = Reply(page, fault.status, "text/html")
        else:
            reply = Reply(_error_body("GenericError", "Please try again later (injected)"), 500)
        entry.status = reply.status
        await self._send_reply(send, reply)
        return True

    async def _send_reply(self, send: Any, reply: Reply | Stream, *, cut: bool = False) -> None:
        if isinstance(reply, Reply):
            data = reply.encode()
            headers = [
                (b"content-type", reply.media_type.encode()),
                (b"content-length", str(len(data)).encode()),
                *[(k.encode(), v.encode()) for k, v in reply.headers.items()],
            ]
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            await send({"type": "http.response.body", "body": data})
            return
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(b"content-type", reply.media_type.encode())],
            }
        )
        sent = 0
        async for chunk in _aiter(reply.chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
            if cut and sent > 0:
                _drop_connection(send)
                return
        await send({"type": "http.response.body", "body": b""})

    # ---- control surface -------------------------------------------------------------------

    async def _control(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = await _read_body(receive)
        body = _parse_json(raw) if raw else {}
        query = parse_qs(scope.get("query_string", b"").decode())
        name = scope["path"].removeprefix("/_sandbox/")
        method = scope["method"]
        result: Any
        if name == "reset" and method == "POST":
            self.reset()
            result = {"reset": True}
        elif name == "faults" and method == "POST":
            result = asdict(self.inject(**body))
        elif name == "faults" and method == "DELETE":
            self.state.faults.clear()
            result = {"cleared": True}
        elif name == "log" and method == "GET":
            action = query.get("action", [None])[0]
            result = [e.as_dict() for e in self.state.requests(action)]
        elif name == "projects" and method == "POST":
            project = self.add_project(**body)
            result = {"id": project.id, "name": project.name}
        elif name == "webhooks" and method == "POST":
            hooked = self.state.project_for_key(body.get("apiKey"))
            if hooked is not None:
                system_webhooks.configure(hooked, body["url"], body.get("headers"))
                result = {"configured": True}
            else:
                result = None
        elif name == "settings":
            if method == "POST":
                self.limits_enabled = bool(body.get("limits", self.limits_enabled))
                if "time_scale" in body:
                    self.time_scale = float(body["time_scale"])
                    self.limits.time_scale = self.time_scale
            result = {"time_scale": self.time_scale, "limits": self.limits_enabled}
        else:
            result = None
        reply = Reply(result) if result is not None else Reply({"error": "unknown control"}, 404)
        await self._send_reply(send, reply)


def _echo_page(fault: Fault, api_key: str) -> str:
    """A misconfigured gateway's error page that echoes the request's key, encoded many ways."""
    raw = api_key.encode()
    forms = {
        "raw": api_key,
        "url": quote(api_key, safe=""),
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "basic": "Basic " + base64.b64encode(b"user:" + raw).decode(),
        "header": base64.b64encode(b"Api-Key: " + raw).decode(),
        "json": json.dumps({"apiKey": api_key}),
    }
    shown = [f"{name}={forms[name]}" for name in (fault.encodings or forms)]
    return f"{fault.msg}\nrequest headers echoed:\n" + "\n".join(shown)


def _drop_connection(send: Any) -> None:
    """Abort the TCP connection under this request, as a network failure would.

    uvicorn's ``send`` is a method of its per-request cycle, which holds the transport.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: not served by uvicorn")
    transport.abort()


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


# Digits as "0", so that a run of 19 of them (an integer orjson might read as a float) is one
# substring search: a regex for it took 110 ms on a 4 MiB bulk body, this takes 9.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19
# Past this size a body is a bulk one: parsed with the garbage collector paused (see _loads).
_BULK_BODY_BYTES = 64 * 1024


def _loads(raw: bytes) -> Any:
    """``json.loads``, through orjson when it can: the standard module is the reference (it takes
    NaN, lone surrogates and huge integers, which orjson refuses or reads as floats), orjson the
    fast path."""
    if _LONG_DIGITS in raw.translate(_DIGITS_AS_ZERO):  # maybe an integer past 64 bits
        return json.loads(raw)
    # Parsing builds only new, acyclic containers, yet a bulk body's hundreds of thousands of them
    # set off collection after collection (184 ms to parse 4 MiB instead of 71): pause it.
    paused = len(raw) > _BULK_BODY_BYTES and gc.isenabled()
    if paused:
        gc.disable()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
    finally:
        if paused:
            gc.enable()


def _parse_json(raw: bytes) -> Any:
    try:
        return _loads(raw)
    except ValueError:
        raise ApiFailure(400, "BadJsonBody", "Could not parse the JSON body") from None


def _json_or_text(raw: bytes) -> Any:
    if not raw:
        return None
    if len(raw) > _LOGGED_BODY_BYTES:
        return {"_bytes": len(raw)}
    try:
        return _loads(raw)
    except ValueError:
        return raw[:1000].decode(errors="replace")


def _pieces(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    for chunk in chunks:
        for at in range(0, len(chunk), size):
            yield chunk[at : at + size]


async def _aiter(chunks: Iterator[bytes] | AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk
