"""Run one flow in this process and print one JSON line: its result, wall time and peak RSS.

``python -m bench.flow_child MODULE:FLOW 'JSON kwargs'``. Credentials come from ITERABLE_*
environment variables, the Prefect API from PREFECT_API_URL (both set by the parent).
"""

from __future__ import annotations

import importlib
import json
import sys
import time

from bench.common import peak_rss_mb


def main() -> None:
    target, kwargs = sys.argv[1], json.loads(sys.argv[2])
    module, name = target.split(":")
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    flow = getattr(importlib.import_module(module), name)
    rss_before = peak_rss_mb()
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        started = time.perf_counter()
        state = flow(**kwargs, return_state=True)
        wall = time.perf_counter() - started
    try:
        result = state.result(raise_on_failure=False)
        result = result.model_dump(mode="json") if hasattr(result, "model_dump") else repr(result)
    except Exception as exc:  # noqa: BLE001
        result = {"error": repr(exc)}
    print(
        json.dumps(
            {
                "state": state.type.value,
                "message": state.message,
                "result": result,
                "flow_wall_s": wall,
                "peak_rss_mb": peak_rss_mb(),
                "rss_after_imports_mb": rss_before,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
