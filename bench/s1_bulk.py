"""Scenario 1: bulk user import (generated NDJSON) through ``prefect_iterable.flows.bulk_import.bulk_import``.

Measured at the sandbox (limits on, time scale 1, bulkUpdate answered by counting: see
``sandbox_proc.COUNTERS``): the sustained bulkUpdate rate in requests and bytes (after the first
burst drained), as a fraction of the ceiling (5 req/s, 4 MiB bodies = 20 MiB/s). The flow runs
in its own process (peak RSS from that process). On the same sandbox process, after a reset: the
ideal client (``bench/ideal.py``) sending the same file's users in 4 MiB bodies at exactly 5 req/s.
Side by side: the same file through the PyPI package iterable-api 0.3.0 in its own venv
(``bench/peer_bulk.py``).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT, SandboxProcess, base_env, run_child, sustained
from bench.data import users_ndjson
from bench.ideal import paced
from prefect_iterable.sandbox import DEMO_API_KEY

ACTION = "ITERABLE_BULK_UPDATE_USERS"
MAX_BODY = 4 * 1024 * 1024
RATE = 5.0
BURST = 5  # the sandbox bucket's capacity: a period's worth of requests
PEER_VENV = ROOT / "bench" / ".peer-venv"


def peer_python() -> Path:
    py = PEER_VENV / "bin" / "python"
    if (
        not (PEER_VENV / "lib").exists()
        or subprocess.run([str(py), "-c", "import iterable"], capture_output=True).returncode != 0
    ):
        subprocess.run([PYTHON, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "iterable-api==0.3.0"], check=True)
    return py


def _window(stats: dict[str, Any]) -> dict[str, Any]:
    """Sustained rates (after the first burst drained; see ``common.sustained``) at the sandbox."""
    ok = stats["by_status"].get("200", 0)
    span = (stats["last_ok_at"] or 0) - (stats["first_at"] or 0)
    mean_body = stats["ok_bytes"] / ok if ok else 0
    steady = sustained(stats.get("ok_times") or [], BURST)
    req_s = steady["req_per_s"]
    return {
        **steady,
        "http_429": stats["by_status"].get("429", 0),
        "bytes_ok": stats["ok_bytes"],
        "window_s": round(span, 2),
        "bytes_per_s": round(req_s * mean_body),
        "req_fraction": round(req_s / RATE, 3),
        "bytes_fraction": round(req_s * mean_body / (RATE * MAX_BODY), 3),
    }


def _bodies(path: Path) -> Iterator[bytes]:
    """The file's users as bulkUpdate bodies under the body cap, built as the ideal client goes
    (joining lines that are already JSON: a few milliseconds a body, well inside its slot)."""
    head, tail = b'{"users":[', b"]}"
    lines: list[bytes] = []
    size = len(head) + len(tail)
    with path.open("rb") as source:
        for line in source:
            line = line.rstrip(b"\n")
            if not line:
                continue
            if lines and size + len(line) + 1 > MAX_BODY:
                yield head + b",".join(lines) + tail
                lines, size = [], len(head) + len(tail)
            lines.append(line)
            size += len(line) + 1
    if lines:
        yield head + b",".join(lines) + tail


def run(
    full: bool = False, flow_env: dict[str, str] | None = None, quick: bool = False
) -> dict[str, Any]:
    # 2,200,000 users (1.27 GB) are 60 s at the ceiling: the default too, so that it measures a
    # sustained rate, not the first burst.
    count = 100_000 if quick else 2_200_000
    t = time.perf_counter()
    path = users_ndjson(count)
    gen_s = time.perf_counter() - t
    size = path.stat().st_size
    env = base_env(
        ITERABLE_API_KEY=DEMO_API_KEY, ITERABLE_PERMISSIONS="read,write", **(flow_env or {})
    )
    with SandboxProcess(count_only=(ACTION,)) as sb, tempfile.TemporaryDirectory() as state:
        env["ITERABLE_BASE_URL"] = sb.url
        cpu0 = sb.cpu_seconds()
        kwargs = {
            "source": str(path),
            "kind": "users",
            "format": "ndjson",
            "state_dir": state,
            "resume": False,
            "batch_bytes": MAX_BODY,
        }
        child, wall = run_child(
            [
                PYTHON,
                "-m",
                "bench.flow_child",
                "prefect_iterable.flows.bulk_import:bulk_import",
                json.dumps(kwargs),
            ],
            env,
        )
        sandbox_cpu = sb.cpu_seconds() - cpu0
        ours = _window(sb.stats(ACTION, times=True))
        result = child["result"] if isinstance(child["result"], dict) else {}
        ours.update(
            flow_state=child["state"],
            done=result.get("done"),
            rejected=result.get("rejected"),
            flow_wall_s=round(child["flow_wall_s"], 1),
            process_wall_s=round(wall, 1),
            end_to_end_bytes_fraction=round(size / child["flow_wall_s"] / (RATE * MAX_BODY), 3),
            peak_rss_mb=round(child["peak_rss_mb"], 1),
            sandbox_cpu_busy=round(sandbox_cpu / max(ours["window_s"], 1e-9), 2),
        )
        sb.reset()
        cpu0 = sb.cpu_seconds()
        ideal_wall = paced(sb.url, DEMO_API_KEY, "/api/users/bulkUpdate", _bodies(path), RATE)
        ideal = _window(sb.stats(ACTION, times=True))
        ideal.update(
            wall_s=round(ideal_wall, 1),
            sandbox_cpu_busy=round((sb.cpu_seconds() - cpu0) / max(ideal_wall, 1e-9), 2),
        )
    ours["ratio_to_ideal"] = (
        round(ours["bytes_per_s"] / ideal["bytes_per_s"], 3) if ideal["bytes_per_s"] else None
    )
    with SandboxProcess(count_only=(ACTION,)) as sb:
        py = peer_python()
        peer, _ = run_child(
            [str(py), str(ROOT / "bench" / "peer_bulk.py"), sb.url, DEMO_API_KEY, str(path)],
            base_env(PYTHONPATH=""),
            timeout=7200,
        )
        stats = sb.stats(ACTION)
        peer["http_429_at_sandbox"] = stats["by_status"].get("429", 0)
        peer["window"] = _window(stats)
    return {
        "scenario": 1,
        "name": f"Bulk user import, {count:,} users ({size / 1e6:.0f} MB NDJSON)",
        "users": count,
        "file_bytes": size,
        "generate_s": round(gen_s, 1),
        "ours": ours,
        "ideal": ideal,
        "baseline": peer,
        "goal": "bytes and requests >= 0.95 of the ceiling, zero 429s, peak RSS <= 150 MB",
        "met": ours["steady"]
        and ours["bytes_fraction"] >= 0.95
        and ours["req_fraction"] >= 0.95
        and ours["http_429"] == 0
        and ours["peak_rss_mb"] <= 150,
    }
