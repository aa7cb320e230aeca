"""Scenario 3: export and archive through ``prefect_iterable.flows.export_archive.export_archive``.

The sandbox's export knobs are set so that one day of ``emailSend`` (CSV) is about the target
size (1 GB with ``--full``, 200 MB by default) and the job produces its files at once, so the
measure is the download-and-store path, not the job's simulated run time. Baseline, in the same
run and the same sandbox: a plain httpx script that starts the same export job, polls its file
list at 1 request/s, and streams every file to disk.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from bench.common import PYTHON, SandboxProcess, base_env, check_loopback, run_child
from prefect_iterable.sandbox import DEMO_API_KEY

ROW_BYTES = 88  # per emailSend CSV row of the sandbox: 125 produced 0.71 GB of a 1 GB target


def _window() -> tuple[datetime, datetime]:
    end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=1), end


def _baseline(url: str, dest: Path) -> dict[str, Any]:
    start, end = _window()
    fmt = "%Y-%m-%d %H:%M:%S"
    headers = {"Api-Key": DEMO_API_KEY}
    began = time.perf_counter()
    with httpx.Client(base_url=check_loopback(url), headers=headers, timeout=120) as c:
        job = (
            c.post(
                "/api/export/start",
                json={
                    "dataTypeName": "emailSend",
                    "outputFormat": "text/csv",
                    "startDateTime": start.strftime(fmt),
                    "endDateTime": end.strftime(fmt),
                },
            )
            .raise_for_status()
            .json()["jobId"]
        )
        files: list[dict[str, str]] = []
        state, after = "Enqueued", None
        while True:
            time.sleep(1.05)  # 1 request/s per organization
            params = {"startAfter": after} if after else {}
            page = c.get(f"/api/export/{job}/files", params=params).raise_for_status().json()
            state = page["jobState"]
            files += page["files"]
            if page["files"]:
                after = page["files"][-1]["file"]
            if state in ("Completed", "Failed") and not page["files"]:
                break
        total = 0
        with httpx.Client(timeout=120) as plain:
            for f in files:
                with (
                    plain.stream("GET", check_loopback(f["url"])) as r,
                    (dest / f["file"]).open("wb") as out,
                ):
                    r.raise_for_status()
                    for chunk in r.iter_bytes(1 << 16):
                        out.write(chunk)
                        total += len(chunk)
    wall = time.perf_counter() - began
    return {
        "state": state,
        "files": len(files),
        "bytes": total,
        "wall_s": round(wall, 1),
        "mb_per_s": round(total / wall / 1e6, 2),
    }


def run(full: bool = False, flow_env: dict[str, str] | None = None) -> dict[str, Any]:
    target = 1_000_000_000 if full else 200_000_000
    settings = {
        "rows_per_hour": target // ROW_BYTES // 24,
        "bytes_per_second": 10**12,
        "start_delay_seconds": 0.2,
    }
    start, end = _window()
    with SandboxProcess(export_settings=settings) as sb, tempfile.TemporaryDirectory() as tmp:
        env = base_env(ITERABLE_API_KEY=DEMO_API_KEY, ITERABLE_BASE_URL=sb.url, **(flow_env or {}))
        cpu0 = sb.cpu_seconds()
        kwargs = {
            "data_types": ["emailSend"],
            "start": start.isoformat(),
            "end": end.isoformat(),
            "output_format": "csv",
            "mode": "async",
            "storage_path": str(Path(tmp) / "ours"),
            "verify": False,
            "poll_max_seconds": 2.0,
        }
        child, wall = run_child(
            [
                PYTHON,
                "-m",
                "bench.flow_child",
                "prefect_iterable.flows.export_archive:export_archive",
                json.dumps(kwargs),
            ],
            env,
        )
        result = child["result"] if isinstance(child["result"], dict) else {}
        ours = {
            "flow_state": child["state"],
            "message": child["message"] if child["state"] != "COMPLETED" else None,
            "files": result.get("files"),
            "bytes": result.get("bytes"),
            "flow_wall_s": round(child["flow_wall_s"], 1),
            "mb_per_s": round((result.get("bytes") or 0) / child["flow_wall_s"] / 1e6, 2),
            "peak_rss_mb": round(child["peak_rss_mb"], 1),
            # What paces the download: the sandbox generates the CSV as it is read.
            "sandbox_cpu_busy": round((sb.cpu_seconds() - cpu0) / child["flow_wall_s"], 2),
        }
        base_dir = Path(tmp) / "baseline"
        base_dir.mkdir()
        cpu0 = sb.cpu_seconds()
        baseline = _baseline(sb.url, base_dir)
        baseline["sandbox_cpu_busy"] = round((sb.cpu_seconds() - cpu0) / baseline["wall_s"], 2)
    ratio = ours["mb_per_s"] / baseline["mb_per_s"] if baseline["mb_per_s"] else None
    return {
        "scenario": 3,
        "name": f"Export and archive, {(ours['bytes'] or 0) / 1e9:.2f} GB of emailSend CSV "
        f"(async jobs; target {target / 1e9:.1f} GB)",
        "ours": ours,
        "baseline": baseline,
        "ratio": round(ratio, 3) if ratio else None,
        "goal": "throughput >= 1.0 x plain httpx download; peak RSS <= 150 MB",
        "met": bool(ratio and ratio >= 1.0 and ours["peak_rss_mb"] <= 150),
    }
