"""Scenario 5: GDPR forget through ``prefect_iterable.flows.gdpr.gdpr_forget`` at Iterable's 3 requests/s.

One run is given more identifiers than the project's daily forget cap (1,200 against 1,000 with
``--full``; 240 against a cap lowered to 200 by default, to stay within the time box): it must
forget at the documented rate (measured at the sandbox: forget requests between the first and
the last) and then stop at the cap, returning exactly the identifiers it did not do. The
baseline is the documented ceiling itself (3 req/s): the cap forbids a second pass.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from bench.common import PYTHON, SandboxProcess, base_env, run_child
from prefect_iterable.sandbox import DEMO_API_KEY

ACTION = "ITERABLE_FORGET_USER"
RATE = 3.0


def run(full: bool = False, flow_env: dict[str, str] | None = None) -> dict[str, Any]:
    cap, given = (1000, 1200) if full else (200, 240)
    emails = [f"forget.me.{i}@example.com" for i in range(given)]
    with SandboxProcess(forget_cap=cap) as sb, tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "forget.txt"
        source.write_text("\n".join(emails) + "\n")
        env = base_env(
            ITERABLE_API_KEY=DEMO_API_KEY,
            ITERABLE_BASE_URL=sb.url,
            ITERABLE_PERMISSIONS="read,write,delete",
            **(flow_env or {}),
        )
        kwargs = {
            "identifiers_file": str(source),
            "identifier_type": "email",
            "audit_storage": str(Path(tmp) / "audit"),
            "verify": False,
        }
        child, wall = run_child(
            [
                PYTHON,
                "-m",
                "bench.flow_child",
                "prefect_iterable.flows.gdpr:gdpr_forget",
                json.dumps(kwargs),
            ],
            env,
        )
        stats = sb.stats(ACTION)
    ok = stats["by_status"].get("200", 0)
    span = (stats["last_ok_at"] or 0) - (stats["first_at"] or 0)
    rate = (ok - 1) / span if ok > 1 and span > 0 else 0.0
    result = child["result"] if isinstance(child["result"], dict) else {}
    remainder = result.get("remainder") or []
    expected_rest = emails[cap:]
    correct = result.get("forgotten") == cap and sorted(remainder) == sorted(expected_rest)
    ours = {
        "flow_state": child["state"],
        "forgotten": result.get("forgotten"),
        "deferred": result.get("deferred"),
        "failed": result.get("failed"),
        "remainder_len": len(remainder),
        "remainder_correct": correct,
        "stop_reason": result.get("stop_reason"),
        "forget_requests_ok": ok,
        "http_429": stats["by_status"].get("429", 0),
        "window_s": round(span, 1),
        "req_per_s": round(rate, 3),
        "fraction": round(rate / RATE, 3),
        "flow_wall_s": round(child["flow_wall_s"], 1),
        "peak_rss_mb": round(child["peak_rss_mb"], 1),
    }
    return {
        "scenario": 5,
        "name": f"GDPR forget, {given:,} users against a daily cap of {cap:,}",
        "ours": ours,
        "baseline": {"req_per_s": RATE, "note": "documented ceiling"},
        "goal": ">= 0.95 of 3 req/s; stops at the cap with the exact remainder",
        "met": ours["fraction"] >= 0.95 and correct,
    }
