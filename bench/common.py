"""Shared helpers: free ports, child processes on loopback, the bench sandbox and Prefect server."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: this repo importable, no telemetry, no proxies."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        PYTHONPATH=str(ROOT),
        DO_NOT_TRACK="1",
        NO_PROXY="127.0.0.1,localhost",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def check_loopback(url: str) -> str:
    host = httpx.URL(url).host
    if host not in (LOOPBACK, "localhost"):
        raise SystemExit(f"refusing to send to a non-loopback address: {url}")
    return url


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f} s")


class SandboxProcess:
    """``bench/sandbox_proc.py`` on a free loopback port: the sandbox in its own process (own GIL).

    ``stats(action)`` asks it for counts by status and the arrival times of first and last
    request, without shipping bodies back.
    """

    def __init__(
        self,
        *,
        limits: bool = True,
        export_settings: dict[str, Any] | None = None,
        forget_cap: int | None = None,
        count_only: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        args = [PYTHON, "-m", "bench.sandbox_proc", "--port", str(self.port)]
        if not limits:
            args.append("--no-limits")
        if export_settings:
            args += ["--export-settings", json.dumps(export_settings)]
        if forget_cap is not None:
            args += ["--forget-cap", str(forget_cap)]
        if count_only:
            args += ["--count-only", ",".join(count_only)]
        self.proc = subprocess.Popen(args, env=base_env(), cwd=ROOT)
        wait_http(self.url + "/_bench/stats", proc=self.proc)

    def stats(self, action: str | None = None, *, times: bool = False) -> dict[str, Any]:
        params = {"action": action} if action else {}
        if times:
            params["times"] = "1"
        return httpx.get(self.url + "/_bench/stats", params=params, timeout=60).json()

    def reset(self) -> None:
        httpx.post(self.url + "/_sandbox/reset", timeout=60)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def prefect_server() -> Iterator[dict[str, str]]:
    """``prefect server start`` on a free loopback port with its own PREFECT_HOME; yields env."""
    home = tempfile.mkdtemp(prefix="bench-prefect-")
    port = free_port()
    env = base_env(
        PREFECT_HOME=home,
        PREFECT_API_URL=f"http://{LOOPBACK}:{port}/api",
        PREFECT_SERVER_API_HOST=LOOPBACK,
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_UI_ENABLED="false",
    )
    log = open(Path(home) / "server.log", "wb")
    proc = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "prefect"),
            "server",
            "start",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--no-ui",
        ],
        env=env,
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(f"http://{LOOPBACK}:{port}/api/health", timeout=120, proc=proc)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_child(
    args: list[str], env: dict[str, str], timeout: float = 3600
) -> tuple[dict[str, Any], float]:
    """Run a child that prints one JSON line last; return (that JSON, its wall time)."""
    started = time.perf_counter()
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise RuntimeError(f"{' '.join(args[:4])} failed ({proc.returncode}):\n{tail}")
    return json.loads(lines[-1]), wall


def peak_rss_mb() -> float:
    """This process's own peak RSS (children report their own).

    ``VmHWM`` where Linux has it: ``ru_maxrss`` survives ``execve``, so a child started by a
    large parent reports the parent's RSS at the fork as its own peak (a 13 MB child of a 300 MB
    parent reports 300 MB).
    """
    with contextlib.suppress(OSError, IndexError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sustained(ok_times: list[float], burst: int) -> dict[str, Any]:
    """The rate after the first burst drained: 2xx arrivals after the first ``burst`` (the
    sandbox bucket's capacity, the most any burst can get through), over their own span.

    A window that holds little more than the burst says nothing about the sustained rate; the
    result says so (``steady`` false) rather than print a figure above the ceiling.
    """
    times = sorted(ok_times)
    rest = times[burst:] if len(times) > burst + 1 else times
    span = rest[-1] - rest[0] if len(rest) > 1 else 0.0
    rate = (len(rest) - 1) / span if span > 0 else 0.0
    whole = times[-1] - times[0] if times else 0.0
    if len(times) > burst and whole > 0:
        # A bucket lets at most its capacity through on its first tokens and the rest at its
        # rate, so this figure cannot exceed the ceiling, whatever the pattern of arrivals (the
        # one above can, by a little, when the first burst was not spent at once).
        rate = min(rate, (len(times) - burst) / whole)
    return {
        "requests_ok": len(times),
        "steady_requests": len(rest),
        "steady_window_s": round(span, 2),
        "steady": len(times) > 2 * burst + 1 and span > 0,
        "req_per_s": round(rate, 3),
    }
