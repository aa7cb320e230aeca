"""Scenario 2: the client's overhead, and the cost of a Prefect task run per call.

Part A (sandbox limits off, sandbox in its own process): 5,000 ``GET /api/channels`` through a
bare ``httpx.Client`` loop, through ``iterable_api.Client(limiter=NoLimiter())``, and through the
client with its default process-wide limiter (``rate_limit_scale=1e6`` so it keeps its books but
never waits). Part B (``bench/task_child.py``, one process, a real Prefect server): 100 runs of
``prefect_iterable.tasks.channels.list_channels`` inside one flow against the same 100 calls through the client.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from bench.common import PYTHON, SandboxProcess, base_env, check_loopback, run_child
from prefect_iterable.api import Client
from prefect_iterable.api.limits import NoLimiter
from prefect_iterable.sandbox import DEMO_API_KEY

CALLS = 5000
ROUNDS = 3


def _bare(url: str, n: int) -> float:
    with httpx.Client(base_url=check_loopback(url), headers={"Api-Key": DEMO_API_KEY}) as c:
        started = time.perf_counter()
        for _ in range(n):
            r = c.get("/api/channels")
            r.raise_for_status()
            r.json()
        return time.perf_counter() - started


def _ours(url: str, n: int, **options: Any) -> float:
    with Client(DEMO_API_KEY, base_url=check_loopback(url), **options) as c:
        started = time.perf_counter()
        for _ in range(n):
            c.call("ITERABLE_LIST_CHANNELS")
        return time.perf_counter() - started


def run(full: bool = False, flow_env: dict[str, str] | None = None) -> dict[str, Any]:
    timings: dict[str, list[float]] = {"bare": [], "nolimiter": [], "default": []}
    with SandboxProcess(limits=False) as sb:
        _bare(sb.url, 200), _ours(sb.url, 200, limiter=NoLimiter())  # warm up
        for _ in range(ROUNDS):  # interleaved, so that machine noise hits all three alike
            timings["bare"].append(_bare(sb.url, CALLS))
            timings["nolimiter"].append(_ours(sb.url, CALLS, limiter=NoLimiter()))
            timings["default"].append(_ours(sb.url, CALLS, rate_limit_scale=1e6))
        med = {k: statistics.median(v) for k, v in timings.items()}
        env = base_env(ITERABLE_API_KEY=DEMO_API_KEY, ITERABLE_BASE_URL=sb.url, **(flow_env or {}))
        tasks, _ = run_child([PYTHON, "-m", "bench.task_child", "100"], env)
    per = {k: v / CALLS * 1000 for k, v in med.items()}
    return {
        "scenario": 2,
        "name": f"Client overhead, {CALLS:,} GET /api/channels (limits off)",
        "rounds": ROUNDS,
        "bare_httpx_ms_per_call": round(per["bare"], 3),
        "ours_nolimiter_ms_per_call": round(per["nolimiter"], 3),
        "ours_default_limiter_ms_per_call": round(per["default"], 3),
        "ratio_nolimiter": round(med["nolimiter"] / med["bare"], 3),
        "ratio_default_limiter": round(med["default"] / med["bare"], 3),
        "all_rounds_s": {k: [round(x, 2) for x in v] for k, v in timings.items()},
        "task_runs": tasks,
        "goal": "ours <= 1.10 x bare httpx",
        "met": med["nolimiter"] / med["bare"] <= 1.10,
    }
