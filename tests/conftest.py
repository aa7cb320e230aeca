"""Shared fixtures: a real sandbox on loopback, fresh credentials per test, a real Prefect server.

Each test gets its own sandbox project with a random API key, so tests never share data, rate
limit buckets (client or sandbox side) or log entries, and a leaked key is easy to search for.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from prefect_iterable.api import Client
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.sandbox import Sandbox, SandboxServer
from prefect_iterable.sandbox.data import Project

ALL_PERMISSIONS = ["read", "write", "send", "delete"]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[Sandbox]:
    sandbox_server.sandbox.state.faults.clear()
    sandbox_server.sandbox.limits_enabled = True
    yield sandbox_server.sandbox
    sandbox_server.sandbox.state.faults.clear()


@pytest.fixture
def api_key() -> str:
    return "itbl-test-" + secrets.token_hex(16)


@pytest.fixture
def project(sandbox: Sandbox, api_key: str) -> Project:
    """A fresh email-based project reachable with ``api_key``."""
    return sandbox.add_project(api_key)


@pytest.fixture
def make_project(sandbox: Sandbox) -> Callable[..., tuple[str, Project]]:
    """Make another project (an identity mode, features): returns its key and the project."""

    def make(**fields: Any) -> tuple[str, Project]:
        key = "itbl-test-" + secrets.token_hex(16)
        return key, sandbox.add_project(key, **fields)

    return make


@pytest.fixture
def credentials(
    sandbox_server: SandboxServer, api_key: str, project: Project
) -> IterableCredentials:
    return IterableCredentials(
        api_key=api_key, base_url=sandbox_server.url, permissions=ALL_PERMISSIONS, timeout=5.0
    )


@pytest.fixture
def client(credentials: IterableCredentials) -> Iterator[Client]:
    with credentials.get_client() as c:
        yield c


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One real Prefect server (the test harness) for every test that runs tasks or flows."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        with prefect_test_harness(server_startup_timeout=90):
            yield


@pytest.fixture
def run_in_flow(prefect_server: None) -> Callable[..., Any]:
    """Run one task inside a real flow on the Prefect server and return its result."""
    from prefect import flow

    def run(task: Any, /, *args: Any, **kwargs: Any) -> Any:
        @flow(name=f"test-{task.name}")
        def one_task_flow() -> Any:
            return task(*args, **kwargs)

        return one_task_flow()

    return run
