"""prefect.yaml deploys to a real local Prefect server: schedules, UI runs and the GDPR trigger."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    """``prefect server start`` on a free loopback port with its own database."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("prefect server did not start")
        time.sleep(0.5)
    yield {**env, "PREFECT_API_URL": api}
    server.terminate()
    server.wait(timeout=30)


def _prefect(env, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_prefect_deploy_all_creates_every_deployment(local_server):
    env = local_server
    _prefect(env, "work-pool", "create", "iterable", "--type", "process")
    _prefect(env, "--no-prompt", "deploy", "--all")

    api = env["PREFECT_API_URL"]
    deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=30).json()
    by_name = {d["name"]: d for d in deployments}
    assert set(by_name) == {
        "export-archive-nightly",
        "campaign-launch",
        "emergency-stop",
        "bulk-import",
        "gdpr-forget",
    }
    nightly = by_name["export-archive-nightly"]
    schedule = nightly["schedules"][0]["schedule"]
    assert schedule["cron"] == "30 2 * * *" and schedule["timezone"] == "UTC"
    for deployment in deployments:
        assert deployment["work_pool_name"] == "iterable"
        # Credentials travel by block name; no key is ever a parameter.
        assert deployment["parameters"].get("credentials_block") == "iterable"
        # The UI form is built from the flow's typed parameters.
        assert deployment["parameter_openapi_schema"]["properties"]

    automations = httpx.post(f"{api}/automations/filter", json={}, timeout=30).json()
    gdpr = [a for a in automations if "gdpr-forget" in a["name"]]
    assert len(gdpr) == 1
    trigger = gdpr[0]["trigger"]
    assert trigger["expect"] == ["iterable.gdpr.request"]
    action = gdpr[0]["actions"][0]
    assert action["deployment_id"] == by_name["gdpr-forget"]["id"]
    assert action["parameters"]["identifiers"] == "{{ event.payload.identifiers | tojson }}"

    # The trigger fires: an iterable.gdpr.request event creates a gdpr-forget run with its payload.
    event = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(timezone.utc).isoformat(),
        "event": "iterable.gdpr.request",
        "resource": {"prefect.resource.id": "iterable.gdpr.request-42"},
        "payload": {"identifiers": ["gone@example.com", "left@example.com"]},
    }
    assert httpx.post(f"{api}/events", json=[event], timeout=30).status_code < 300
    deadline = time.monotonic() + 60
    runs: list[dict] = []
    while not runs and time.monotonic() < deadline:
        time.sleep(1)
        runs = httpx.post(
            f"{api}/flow_runs/filter",
            json={"deployments": {"id": {"any_": [by_name["gdpr-forget"]["id"]]}}},
            timeout=30,
        ).json()
    assert runs, "the event did not start a gdpr-forget run"
    assert json.loads(runs[0]["parameters"]["identifiers"]) == [
        "gone@example.com",
        "left@example.com",
    ]
