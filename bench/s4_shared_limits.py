"""Scenario 4: four worker processes share one 10 req/s limit (events/trackBulk).

Mode ``prefect``: each worker throttles through ``prefect_iterable.blocks.limits.PrefectGlobalLimiter`` on a real
local Prefect server (``prefect server start`` in a subprocess, own PREFECT_HOME; limits created
with ``python -m prefect_iterable.blocks.limits create``). Mode ``local`` (the baseline): each worker has only its
own token bucket, so together they offer four times the limit and Iterable answers 429s.
Also measured: Prefect's ``rate_limit()`` with one server call per request (the previous design).
The aggregate is counted at the sandbox: 2xx answers that arrived in the common window.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from bench.common import PYTHON, ROOT, SandboxProcess, prefect_server, sustained

ACTION = "ITERABLE_TRACK_EVENTS_BULK"
LIMIT_PER_SECOND = 10.0
WORKERS = 4


def _run_mode(
    sb: SandboxProcess, env: dict[str, str], mode: str, duration: float
) -> dict[str, Any]:
    procs = [
        subprocess.Popen(
            [
                PYTHON,
                "-m",
                "bench.limit_worker",
                "--url",
                sb.url,
                "--mode",
                mode,
                "--duration",
                str(duration),
                "--worker",
                str(i),
            ],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]
    for p in procs:  # wait until every worker has imported everything and read its limit
        line = p.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"worker did not start: {line!r}")
    before = sb.stats(ACTION)
    start_wall, start_mono = time.time() + 0.5, time.monotonic() + 0.5
    for p in procs:
        p.stdin.write(f"{start_wall}\n")
        p.stdin.flush()
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=duration + 120)
        outs.append(json.loads(out.strip().splitlines()[-1]))
    after = sb.stats(ACTION)
    times = sb_ok_times(sb)
    in_window = [t for t in times if start_mono <= t < start_mono + duration]
    steady = sustained(in_window, int(LIMIT_PER_SECOND))
    status_429 = after["by_status"].get("429", 0) - before["by_status"].get("429", 0)
    limiter = {}
    for o in outs:
        for k, v in (o.get("limiter") or {}).items():
            limiter[k] = round(limiter.get(k, 0) + v, 2)
    return {
        "mode": mode,
        "duration_s": duration,
        "ok_in_window": len(in_window),
        # Sustained: the sandbox bucket's first tokens (a second's worth) would otherwise count
        # as rate, and a window of 30 s could show more than the limit.
        "aggregate_per_s": steady["req_per_s"],
        "fraction_of_limit": round(steady["req_per_s"] / LIMIT_PER_SECOND, 3),
        "http_429": status_429,
        "client_errors": {k: v for o in outs for k, v in o["errors"].items()},
        "workers_late_s": max(o["late_s"] for o in outs),
        "limiter": limiter or None,
    }


def sb_ok_times(sb: SandboxProcess) -> list[float]:
    import httpx

    r = httpx.get(sb.url + "/_bench/stats", params={"action": ACTION, "times": "1"}, timeout=60)
    return r.json()["ok_times"] or []


def run(full: bool = False) -> dict[str, Any]:
    duration = 60.0  # a minute of sustained sending at the limit, also by default
    started = time.perf_counter()
    with prefect_server() as env, SandboxProcess() as sb:
        server_up = time.perf_counter() - started
        create = subprocess.run(
            [PYTHON, "-m", "prefect_iterable.blocks.limits", "create"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if create.returncode != 0:
            raise RuntimeError(
                f"python -m prefect_iterable.blocks.limits create failed:\n{create.stderr[-2000:]}"
            )
        ours = _run_mode(sb, env, "prefect", duration)
        time.sleep(1.5)  # let the sandbox bucket refill between the modes
        one_slot = _run_mode(sb, env, "prefect-one-slot", duration)
        time.sleep(1.5)
        baseline = _run_mode(sb, env, "local", duration)
    return {
        "scenario": 4,
        "name": "Shared limits across 4 processes (events/trackBulk, 10 req/s)",
        "prefect_server_start_s": round(server_up, 1),
        "ours": ours,
        "baseline": baseline,
        "prefect_rate_limit_one_slot": one_slot,
        "goal": "aggregate 90-100 % of the limit, zero 429s",
        "met": 0.9 <= ours["fraction_of_limit"] <= 1.0 and ours["http_429"] == 0,
    }
