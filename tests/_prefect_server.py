"""One real ``prefect server start`` (API and UI) with prefect.yaml deployed and a process worker.

The end-to-end tests that go through deployments (``tests/flows/test_deployments.py``, the
browser test) use it as a user would run it: ``PREFECT_API_URL`` set before the server starts
(the UI takes it then), ``prefect work-pool create``, ``prefect deploy --all``, ``prefect worker
start``. Import the fixture into a test module::

    from tests._prefect_server import deployed_prefect  # noqa: F401 - a fixture

Everything Prefect keeps lives under the fixture's ``home`` (its PREFECT_HOME), so that a test
can read every byte of it; the worker's HOME is ``worker_home``, where the flows' default files
(``~/.prefect-iterable/``) land.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[1]
POOL = "iterable"


@dataclass
class LocalPrefect:
    """A running Prefect server, its environment, and the worker serving its deployments."""

    home: Path
    worker_home: Path
    worker_log: Path
    api: str
    ui: str
    env: dict[str, str]

    def prefect(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``prefect …`` against this server; fails the test with its output if it fails."""
        return self.python("-m", "prefect", *args)

    def python(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python …`` with this server's environment (as a user's shell would have it)."""
        done = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def deployment(self, name: str) -> dict:
        deployments = httpx.post(f"{self.api}/deployments/filter", json={}, timeout=30).json()
        return next(d for d in deployments if d["name"] == name)

    def runs_of(self, deployment_id: str) -> list[dict]:
        return httpx.post(
            f"{self.api}/flow_runs/filter",
            json={"deployments": {"id": {"any_": [deployment_id]}}},
            timeout=30,
        ).json()

    def wait_for_run(self, deployment_id: str, match, state_names: set[str], timeout: float = 300):
        """The first run of the deployment matching ``match`` once it is in one of the states.

        A run that fails or crashes ends the wait at once, with its state and the worker's log.
        """
        deadline = time.monotonic() + timeout
        while True:
            run = next((r for r in self.runs_of(deployment_id) if match(r)), None)
            if run is not None and run["state_name"] in state_names:
                return run
            if run is not None and run["state_type"] in ("FAILED", "CRASHED"):
                raise AssertionError(f"{run['state']}\n{self.worker_output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no run in {state_names}: {run}\n{self.worker_output()}")
            time.sleep(1)

    def worker_output(self) -> str:
        return self.worker_log.read_text(errors="replace")[-4000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(api: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("prefect server did not start")
        time.sleep(0.5)


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


@contextlib.contextmanager
def deployed(home: Path) -> Iterator[LocalPrefect]:
    """Start the server on a free port, deploy prefect.yaml, start a worker; stop both after."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home / "prefect"),
        # Before the server starts: the UI takes its API URL then (README's order).
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # The worker looks for scheduled runs every 2 s instead of 10 s: tests wait less, and a
        # loaded machine still has minutes of slack in every wait.
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
    }
    worker_home = home / "worker-home"
    worker_home.mkdir(parents=True)
    local = LocalPrefect(
        home=home / "prefect",
        worker_home=worker_home,
        worker_log=home / "worker.log",
        api=api,
        ui=f"http://127.0.0.1:{port}",
        env=env,
    )
    with (home / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
            + ["--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    worker = None
    try:
        _wait_healthy(api, server)
        local.prefect("work-pool", "create", POOL, "--type", "process")
        local.prefect("--no-prompt", "deploy", "--all")
        with local.worker_log.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL],
                cwd=ROOT,
                env={**env, "HOME": str(worker_home)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        yield local
    finally:
        _stop(worker)
        _stop(server)


@pytest.fixture(scope="module")
def deployed_prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefect]:
    """A real Prefect server with prefect.yaml deployed and a worker on its pool."""
    with deployed(tmp_path_factory.mktemp("deployed-prefect")) as local:
        yield local
