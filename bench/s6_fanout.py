"""Scenario 6: single-record actions at their ceilings through one ``send_many_records`` task.

For ``users/update`` (500 req/s per project) and ``events/track`` (2,000 req/s), each against its
own sandbox process (limits on, time scale 1), one after another on the same process with a
reset between: ours (a flow with one ``send_many_records`` task over generated records, in its own
process: its peak RSS is the whole flow's), the ideal client (``bench/ideal.py``: pre-encoded
bodies at exactly the documented rate), and the peer (the same calls as one Prefect task run each,
``.map``, on a smaller count). Rates are sustained rates at the sandbox (``common.sustained``).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, SandboxProcess, base_env, run_child, sustained
from bench.fanout_flows import PATHS, wire_bodies
from bench.ideal import paced_concurrent
from prefect_iterable.api.catalog import get_action
from prefect_iterable.sandbox import DEMO_API_KEY

SIZES = {  # action: (quick, default) counts, the default ≥ 60 s at the ceiling; --full as default
    "ITERABLE_UPDATE_USER": (5_000, 50_000),
    "ITERABLE_TRACK_EVENT": (10_000, 130_000),
}
PEER_COUNT = 300


def _measure(sb: SandboxProcess, action: str, burst: int, rate: float) -> dict[str, Any]:
    stats = sb.stats(action, times=True)
    figures = sustained(stats["ok_times"] or [], burst)
    figures.update(
        http_429=stats["by_status"].get("429", 0),
        by_status=stats["by_status"],
        fraction=round(figures["req_per_s"] / rate, 3),
    )
    return figures


def _case(action: str, count: int, flow_env: dict[str, str]) -> dict[str, Any]:
    limit = get_action(action).limit
    assert limit is not None
    rate = limit.requests / limit.period.value
    burst = limit.requests
    env = base_env(ITERABLE_API_KEY=DEMO_API_KEY, ITERABLE_PERMISSIONS="read,write", **flow_env)
    with SandboxProcess() as sb, tempfile.TemporaryDirectory() as tmp:
        env["ITERABLE_BASE_URL"] = sb.url
        kwargs = {"action": action, "count": count, "checkpoint": str(Path(tmp) / "run.ckpt")}
        cpu0 = sb.cpu_seconds()
        child, wall = run_child(
            [PYTHON, "-m", "bench.flow_child", "bench.fanout_flows:fan_out", json.dumps(kwargs)],
            env,
        )
        ours = _measure(sb, action, burst, rate)
        ours["sandbox_cpu_busy"] = round(
            (sb.cpu_seconds() - cpu0) / max(child["flow_wall_s"], 1e-9), 2
        )
        result = child["result"] if isinstance(child["result"], dict) else {}
        ours.update(
            flow_state=child["state"],
            done=result.get("done"),
            failed=len(result.get("failed") or []),
            unknown=len(result.get("unknown") or []),
            deferred=len(result.get("deferred") or []),
            flow_wall_s=round(child["flow_wall_s"], 1),
            peak_rss_mb=round(child["peak_rss_mb"], 1),
        )
        sb.reset()
        bodies = wire_bodies(action, count)
        cpu0 = sb.cpu_seconds()
        ideal_wall = paced_concurrent(sb.url, DEMO_API_KEY, PATHS[action], bodies, rate)
        ideal = _measure(sb, action, burst, rate)
        ideal.update(
            wall_s=round(ideal_wall, 1),
            sandbox_cpu_busy=round((sb.cpu_seconds() - cpu0) / max(ideal_wall, 1e-9), 2),
        )
        del bodies
        sb.reset()
        peer_child, _ = run_child(
            [
                PYTHON,
                "-m",
                "bench.flow_child",
                "bench.fanout_flows:task_per_record",
                json.dumps({"action": action, "count": PEER_COUNT}),
            ],
            env,
        )
        peer_stats = sb.stats(action)
        peer = {
            "count": PEER_COUNT,
            "flow_wall_s": round(peer_child["flow_wall_s"], 1),
            "req_per_s": round(PEER_COUNT / peer_child["flow_wall_s"], 1),
            "http_429": peer_stats["by_status"].get("429", 0),
            "states": (peer_child["result"] or {}).get("states")
            if isinstance(peer_child["result"], dict)
            else peer_child["result"],
            "peak_rss_mb": round(peer_child["peak_rss_mb"], 1),
        }
    ours["ratio_to_ideal"] = (
        round(ours["req_per_s"] / ideal["req_per_s"], 3) if ideal["req_per_s"] else None
    )
    return {
        "action": action,
        "count": count,
        "ceiling_per_s": rate,
        "ours": ours,
        "ideal": ideal,
        "peer": peer,
        "process_wall_s": round(wall, 1),
        "met": ours["fraction"] >= 0.95
        and ours["http_429"] == 0
        and ours["peak_rss_mb"] <= 150
        and ours["done"] == count,
    }


def run(
    full: bool = False, flow_env: dict[str, str] | None = None, quick: bool = False
) -> dict[str, Any]:
    started = time.perf_counter()
    cases = [
        _case(action, sizes[0] if quick else sizes[1], flow_env or {})
        for action, sizes in SIZES.items()
    ]
    return {
        "scenario": 6,
        "name": "Single-record actions at their ceilings (send_many_records)",
        "cases": cases,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "goal": ">= 0.95 of each ceiling sustained, zero 429s, peak RSS <= 150 MB, every record done",
        "met": all(c["met"] for c in cases),
    }
