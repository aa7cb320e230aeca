"""``python -m bench``: run the benchmarks against the sandbox and write BENCHMARKS.md.

Options: ``--full`` (full sizes: 1 GB export, 1,000 forgets), ``--quick``
(small sizes while developing), ``--only N`` (repeatable, or ``--only 2,4``). Results: ``BENCHMARKS.md`` at the repo root (overwritten) and
``bench/results/latest.json``. Benchmarks report; they do not assert.
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.common import ROOT, peak_rss_mb, prefect_server

RESULTS = ROOT / "bench" / "results"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    import os

    import httpx
    import prefect

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        "httpx": httpx.__version__,
        "os": platform.platform(),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def _f(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def rows(r: dict[str, Any]) -> list[list[str]]:
    """Table rows: scenario, baseline, ours, ratio, 429s, peak RSS, goal met."""
    n, o, b = r["scenario"], r.get("ours", {}), r.get("baseline", {})
    met = "yes" if r.get("met") else "**no**"
    if n == 1:
        i = r.get("ideal", {})
        return [
            [
                r["name"],
                f"ideal client {_f(i.get('bytes_per_s', 0) / 1e6)} MB/s, {_f(i.get('req_per_s'))} "
                f"req/s sustained ({_f(i.get('bytes_fraction'), 3)} of bytes ceiling, "
                f"{i.get('http_429')} × 429, sandbox CPU {_f(i.get('sandbox_cpu_busy'))} cores); "
                f"iterable-api 0.3.0: {_f(b.get('wall_s'), 1)} s, {b.get('http_429_at_sandbox')} × 429, "
                f"{b.get('failed_records_approx'):,} of {b.get('records'):,} records failed",
                f"{_f(o['bytes_per_s'] / 1e6)} MB/s, {_f(o['req_per_s'])} req/s sustained; "
                f"flow {_f(o['flow_wall_s'], 1)} s end to end ({o.get('done')} done, "
                f"{o.get('rejected')} rejected); sandbox CPU {_f(o['sandbox_cpu_busy'])} cores",
                f"{_f(o['bytes_fraction'], 3)} of bytes ceiling, {_f(o['req_fraction'], 3)} of req ceiling"
                f", {_f(o.get('ratio_to_ideal'), 3)} of ideal"
                f" ({_f(o['end_to_end_bytes_fraction'], 3)} end to end)",
                f"{o['http_429']}",
                f"{_f(o['peak_rss_mb'], 0)} MB",
                met,
            ]
        ]
    if n == 2:
        t = r["task_runs"]
        return [
            [
                r["name"],
                f"bare httpx {_f(r['bare_httpx_ms_per_call'], 3)} ms/call",
                f"Client(NoLimiter) {_f(r['ours_nolimiter_ms_per_call'], 3)} ms/call; default "
                f"limiter {_f(r['ours_default_limiter_ms_per_call'], 3)} ms/call",
                f"{_f(r['ratio_nolimiter'], 3)}× (default limiter {_f(r['ratio_default_limiter'], 3)}×)",
                "0",
                "–",
                met,
            ],
            [
                f"Task run per call, {t['calls']} × list_channels in one flow",
                f"client call {_f(t['client_ms_per_call'])} ms",
                f"task run {_f(t['task_ms_per_call'])} ms",
                f"{_f(t['task_over_client'], 1)}×",
                "0",
                "–",
                "(report)",
            ],
        ]
    if n == 3:
        return [
            [
                r["name"],
                f"httpx download {_f(b.get('mb_per_s'))} MB/s ({_f(b.get('wall_s'), 1)} s; "
                f"sandbox CPU {_f(b.get('sandbox_cpu_busy'))} cores)",
                f"{_f(o.get('mb_per_s'))} MB/s ({_f(o.get('flow_wall_s'), 1)} s, {o.get('files')} files,"
                f" {o.get('flow_state')}; sandbox CPU {_f(o.get('sandbox_cpu_busy'))} cores)",
                f"{_f(r.get('ratio'), 3)}×",
                "–",
                f"{_f(o.get('peak_rss_mb'), 0)} MB",
                met,
            ]
        ]
    if n == 4:
        one = r.get("prefect_rate_limit_one_slot") or {}
        return [
            [
                r["name"],
                f"per-process buckets: {_f(b['aggregate_per_s'])} req/s, {b['http_429']} × 429; "
                f"Prefect rate_limit() one slot/request: {_f(one.get('aggregate_per_s'))} req/s "
                f"({_f(one.get('fraction_of_limit'), 3)}), {one.get('http_429')} × 429",
                f"PrefectGlobalLimiter: {_f(o['aggregate_per_s'])} req/s",
                f"{_f(o['fraction_of_limit'], 3)} of the limit",
                f"{o['http_429']}",
                "–",
                met,
            ]
        ]
    if n == 5:
        return [
            [
                r["name"],
                "ceiling 3.00 req/s",
                f"{_f(o['req_per_s'], 3)} req/s; forgot {o['forgotten']}, remainder "
                f"{o['remainder_len']} ({'correct' if o['remainder_correct'] else 'WRONG'})",
                f"{_f(o['fraction'], 3)} of the ceiling (sustained)",
                _gdpr_429s(o),
                f"{_f(o['peak_rss_mb'], 0)} MB",
                met,
            ]
        ]
    if n == 6:
        return [
            [
                f"{c['action']} × {c['count']:,} through one send_many_records task "
                f"(ceiling {c['ceiling_per_s']:,.0f} req/s)",
                f"ideal client {_f(c['ideal']['req_per_s'], 1)} req/s "
                f"({_f(c['ideal']['fraction'], 3)} of the ceiling, {c['ideal']['http_429']} × 429, "
                f"sandbox CPU {_f(c['ideal']['sandbox_cpu_busy'])} cores); a task run per record "
                f"(.map, {c['peer']['count']:,} records): {_f(c['peer']['req_per_s'], 1)} req/s",
                f"{_f(c['ours']['req_per_s'], 1)} req/s sustained; {c['ours']['done']:,} done, "
                f"{c['ours']['failed']} failed, {c['ours']['unknown']} unknown; "
                f"sandbox CPU {_f(c['ours']['sandbox_cpu_busy'])} cores",
                f"{_f(c['ours']['fraction'], 3)} of the ceiling, "
                f"{_f(c['ours']['ratio_to_ideal'], 3)} of ideal",
                f"{c['ours']['http_429']}",
                f"{_f(c['ours']['peak_rss_mb'], 0)} MB",
                "yes" if c["met"] else "**no**",
            ]
            for c in r["cases"]
        ]
    return []


def _gdpr_429s(o: dict[str, Any]) -> str:
    """Scenario 5's 429s, each with its reason."""
    text = f"{o.get('http_429_rate')} for the rate"
    pauses = o.get("pauses") or {}
    if pauses.get("count"):
        text += (
            f" ({pauses['count']} pause(s) of up to {_f(pauses.get('longest_s'))} s cost "
            f"{_f(pauses.get('lost_s'))} s, after request(s) "
            f"{', '.join(map(str, pauses.get('after_request') or []))})"
        )
    cap = o.get("http_429_daily_cap")
    if cap:
        text += (
            f"; {cap} at the daily cap: the sandbox's lowered cap, which the client cannot know "
            "(it knows Iterable's 1,000), so that answer is how it learns of it; not retried"
        )
    else:
        text += "; 0 at the daily cap"
    return text


def write_markdown(report: dict[str, Any]) -> None:
    m = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m bench{' --full' if report['full'] else ''}` on "
        f"{report['date']} in {report['total_s'] / 60:.1f} min. Against the local sandbox with "
        "Iterable's real limits (time scale 1) unless the scenario says otherwise; every server "
        "on 127.0.0.1. Benchmarks report; they do not assert. Raw figures: "
        "`bench/results/latest.json`; how to run: `bench/README.md`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; Python {m['python']}, "
        f"Prefect {m['prefect']}, httpx {m['httpx']}; {m['os']}. Load average at start "
        f"{' '.join(m['loadavg_start'])}, at end {' '.join(m['loadavg_end'])} (other work on the "
        "machine inflates CPU-bound figures).",
        "",
        "| scenario | baseline | ours | ratio | 429s received | peak RSS | goal met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["scenarios"]:
        if "error" in r:
            lines.append(
                f"| scenario {r['scenario']} | – | failed: {r['error'][:200]} | – | – | – | – |"
            )
            continue
        for row in rows(r):
            lines.append("| " + " | ".join(c.replace("|", "/") for c in row) + " |")
    lines += ["", "Goals:", ""]
    for r in report["scenarios"]:
        if "goal" in r:
            lines.append(f"- {r['scenario']}. {r['name']}: {r['goal']}.")
    lines += ["", "Notes:", ""] + [f"- {n}" for n in NOTES] + [""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))


NOTES = [
    "Rates are sustained rates at the sandbox: the 2xx arrivals after the first burst (as many "
    "as the sandbox's bucket holds: a period's worth) over their own span, so no figure can "
    "exceed a ceiling by counting a burst. 'Ideal client' (bench/ideal.py) is a minimal httpx "
    "loop sending pre-encoded bodies at exactly the documented rate, measured in the same run "
    "against the same sandbox process (after a reset): what it cannot reach, the sandbox or "
    "the machine stops, not our client. 'Sandbox CPU' is the sandbox process's CPU time over "
    "the window (1.0 = one core busy).",
    "Scenario 1 answers bulkUpdate by counting (bench/sandbox_proc.py COUNTERS: the body is "
    "read, parsed, limited and capped; the per-record checks and the profile store, which tests "
    "cover, are skipped), so that a million profiles measure the client, not the sandbox's "
    "store. 'End to end' divides the file size by the flow's whole run time.",
    "Scenario 1 baseline: iterable-api 0.3.0 in bench/.peer-venv, `Iterable(key, base_uri=URL)` "
    "(its constructor takes the URL: no monkeypatching) and `iterable.helpers.bulk_update`, "
    "50 users per request, no throttle and no retry: a 429 loses its 50 users.",
    "Scenario 2B runs against a real local Prefect server (SQLite); a task run's cost is mostly "
    "its records on the server, which is why bulk work batches many calls per task.",
    "Scenario 3 sets the sandbox's export knobs so that the job's files are ready at once; both "
    "sides pay the sandbox's generation of the CSV on download.",
    "Scenario 4 counts the 2xx answers that arrived at the sandbox within the common window.",
    "Scenario 5's forgets run 250 to a task run (the flow's default): each task run's start "
    "and end pause the 3 req/s pacing (a second or two on a busy Prefect server), which with "
    "batches of 50 cost 0.05 of the rate (0.907-0.955 measured); the report lists any pause "
    "longer than two slots.",
    "Scenario 5 by default lowers the project's daily forget cap to 200 and gives 240 "
    "identifiers (1,000 and 1,200 with --full) to fit the time box at 3 requests/s. The "
    "lowered cap exists at the sandbox only: the client knows Iterable's 1,000, so it learns "
    "of the lower cap from one 429 (counted apart, 'at the daily cap'); with --full the client "
    "stops itself at the cap and no 429 is expected.",
    "What limits the goals not met (the table's baseline columns are the evidence). Scenario 6, "
    "events/track at 2,000 req/s: the machine. The ideal client, a bare httpx loop with "
    "pre-encoded bodies, stops near a quarter of the ceiling while the sandbox is a third of a "
    "core busy, and ours reaches 0.85 to 1.03 of it (runs of 2026-12-03). Each request costs a Python client "
    "about 1 ms of CPU in httpx, httpcore and h11, and httpx's async pool slows down as "
    "connections are added (on loopback: 515 req/s with one connection, 107 with 16), so 2,000 "
    "req/s needs more CPU than one Python process gets on 2 cores, for the ideal client as for "
    "ours. users/update at 500 req/s is within reach. Scenario 3: both downloads are paced by "
    "the sandbox, which generates the CSV as it is read, with one core busy (its CPU is in the "
    "row), so ours and plain httpx finish within a few percent of each other, either way round "
    "(0.963x to 1.282x in the runs of 2026-12-03); peak RSS stays near the 94 MB floor of a flow "
    "process that only imports Prefect and this package and runs an empty flow.",
    "Scenario 6 sends generated records through one send_many_records task (a flow in its own "
    "process, checkpoint on; events without ids, so each is marked as started before it "
    "leaves). The peer is the same calls as one Prefect task run each (.map) on 300 records, "
    "against the same sandbox process after a reset.",
]

SCENARIOS = {
    1: "s1_bulk",
    2: "s2_overhead",
    3: "s3_export",
    4: "s4_shared_limits",
    5: "s5_gdpr",
    6: "s6_fanout",
}


def summary(r: dict[str, Any]) -> str:
    n = r["scenario"]
    if "error" in r:
        return f"[{n}] FAILED: {r['error'][:300]}"
    o = r.get("ours", {})
    if n == 1:
        return (
            f"[1] bytes {o['bytes_fraction']:.3f}, requests {o['req_fraction']:.3f} of the "
            f"ceiling (ideal {r['ideal']['bytes_fraction']:.3f}); 429s {o['http_429']}; peak RSS "
            f"{o['peak_rss_mb']:.0f} MB; peer 429s {r['baseline'].get('http_429_at_sandbox')}"
        )
    if n == 2:
        return (
            f"[2] ours/bare {r['ratio_nolimiter']:.3f} (default limiter "
            f"{r['ratio_default_limiter']:.3f}); task run/client call "
            f"{r['task_runs']['task_over_client']}x"
        )
    if n == 3:
        return f"[3] ours/httpx {r.get('ratio')}; peak RSS {o.get('peak_rss_mb')} MB"
    if n == 4:
        return (
            f"[4] shared {o['fraction_of_limit']:.3f} of the limit, 429s {o['http_429']}; "
            f"per-process 429s {r['baseline']['http_429']}"
        )
    if n == 5:
        return f"[5] {o['fraction']:.3f} of 3 req/s; remainder correct: {o['remainder_correct']}"
    if n == 6:
        return "[6] " + "; ".join(
            f"{c['action']}: {c['ours']['fraction']:.3f} of the ceiling (ideal "
            f"{c['ideal']['fraction']:.3f}), 429s {c['ours']['http_429']}, RSS "
            f"{c['ours']['peak_rss_mb']:.0f} MB, peer {c['peer']['req_per_s']} req/s"
            for c in r["cases"]
        )
    return str(r)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="full sizes (takes much longer)")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for development (figures say little)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="scenario numbers to run (repeat, or comma-separated)",
    )
    args = parser.parse_args(argv)
    only = sorted({int(x) for o in args.only for x in o.split(",") if x}) or sorted(SCENARIOS)

    import importlib

    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "full": args.full,
        "machine": machine(),
        "scenarios": [],
    }
    need_server = any(n in (1, 2, 3, 5, 6) for n in only)
    with prefect_server() if need_server else _nothing() as env:
        flow_env = {k: env[k] for k in ("PREFECT_API_URL", "PREFECT_HOME")} if env else {}
        for n in only:
            module = importlib.import_module(f"bench.{SCENARIOS[n]}")
            print(f"[{n}] running {SCENARIOS[n]} ...", flush=True)
            t = time.perf_counter()
            options: dict[str, Any] = {"full": args.full}
            parameters = inspect.signature(module.run).parameters
            if "flow_env" in parameters:
                options["flow_env"] = flow_env
            if "quick" in parameters:
                options["quick"] = args.quick
            try:
                result = module.run(**options)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                traceback.print_exc()
                result = {"scenario": n, "error": f"{type(exc).__name__}: {exc}"}
            result["elapsed_s"] = round(time.perf_counter() - t, 1)
            report["scenarios"].append(result)
            print(summary(result), f"({result['elapsed_s']} s)", flush=True)
    report["total_s"] = time.perf_counter() - started
    report["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    report["runner_peak_rss_mb"] = round(peak_rss_mb(), 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2, default=str))
    write_markdown(report)
    print(
        f"total {report['total_s'] / 60:.1f} min; wrote BENCHMARKS.md and "
        f"bench/results/latest.json",
        flush=True,
    )


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
