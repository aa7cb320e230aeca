"""The sandbox in its own process for the benchmarks: ``python -m bench.sandbox_proc --port N``.

It is ``sandbox.Sandbox`` served by uvicorn on 127.0.0.1, unchanged, with two additions for
measuring: request bodies are logged by size only (a million users would otherwise sit in the
request log), and ``GET /_bench/stats?action=ID`` summarises the log (count by status, first and
last arrival) without shipping it back. ``--export-settings`` (JSON) and ``--forget-cap`` set the
demo project's knobs; ``--count-only ACTION,…`` answers those actions by counting (see
``COUNTERS``).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

import uvicorn

import prefect_iterable.sandbox.app as sandbox_app
from prefect_iterable.sandbox import DEMO_API_KEY, Sandbox
from prefect_iterable.sandbox.handlers._base import HANDLERS, Call, bad_params
from prefect_iterable.sandbox.handlers.users import _FAILED_KEYS

sandbox_app._LOGGED_BODY_BYTES = 0  # log sizes only


def _count_users(call: Call) -> dict[str, Any]:
    """users/bulkUpdate answered by counting: every record accepted, nothing stored.

    For a throughput benchmark that asks for it (``--count-only``): parsing, routing, limits and
    the body cap still run, the per-record checks and the profile store do not (tests run them).
    """
    records = call.body.get("users") if isinstance(call.body, dict) else None
    if not isinstance(records, list) or not records:
        raise bad_params("users must be a non-empty array")
    return {
        "successCount": len(records),
        "failCount": 0,
        "createdFields": [],
        "filteredOutFields": [],
        "failedUpdates": {key: [] for key in _FAILED_KEYS},
        "invalidEmails": [],
        "invalidUserIds": [],
    }


COUNTERS = {"ITERABLE_BULK_UPDATE_USERS": _count_users}


class BenchApp:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_bench/stats":
            query = parse_qs(scope.get("query_string", b"").decode())
            action = query.get("action", [None])[0]
            entries = self.sandbox.state.requests(action)
            by_status = Counter(str(e.status) for e in entries)
            done = [e for e in entries if 200 <= e.status < 300]
            body = json.dumps(
                {
                    "requests": len(entries),
                    "ok_bytes": sum(
                        e.body["_bytes"]
                        for e in done
                        if isinstance(e.body, dict) and "_bytes" in e.body
                    ),
                    "by_status": dict(by_status),
                    "first_at": entries[0].at if entries else None,
                    "last_at": entries[-1].at if entries else None,
                    "first_ok_at": done[0].at if done else None,
                    "last_ok_at": done[-1].at if done else None,
                    "ok_times": [e.at for e in done] if query.get("times") else None,
                    "throttled_times": [e.at for e in entries if e.status == 429]
                    if query.get("times")
                    else None,
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.sandbox(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-limits", action="store_true")
    parser.add_argument("--export-settings", default=None)
    parser.add_argument("--forget-cap", type=int, default=None)
    parser.add_argument("--count-only", default="", help="actions answered by counting only")
    args = parser.parse_args()
    for action in filter(None, args.count_only.split(",")):
        HANDLERS[action] = COUNTERS[action]
    sandbox = Sandbox(limits=not args.no_limits)
    sandbox.base_url = f"http://127.0.0.1:{args.port}"
    project = sandbox.state.project_for_key(DEMO_API_KEY)
    if args.export_settings:
        from prefect_iterable.sandbox.data import export_settings

        export_settings(project).update(json.loads(args.export_settings))
    if args.forget_cap is not None:
        project.forget_daily_cap = args.forget_cap
    uvicorn.run(
        BenchApp(sandbox),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
