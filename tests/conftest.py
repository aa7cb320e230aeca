"""Shared fixtures: a real sandbox on loopback, fresh credentials per test, a real Prefect server.

Each test gets its own sandbox project with a random API key, so tests never share data, rate
limit buckets (client or sandbox side) or log entries, and a leaked key is easy to search for.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from prefect_iterable.api import Client
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.sandbox import Sandbox, SandboxServer
from prefect_iterable.sandbox.data import Project, UserList, export_settings
from tests import _seeds

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


# Export jobs are capped per organization: a test marked ``own_organization`` gets one of its
# own, so that other tests' jobs never take its slots. Each xdist worker has its own sandbox.
_organizations = itertools.count(900_000)


@pytest.fixture
def project(request: pytest.FixtureRequest, sandbox: Sandbox, api_key: str) -> Project:
    """A fresh email-based project reachable with ``api_key``."""
    if request.node.get_closest_marker("own_organization"):
        return sandbox.add_project(api_key, organization_id=next(_organizations))
    return sandbox.add_project(api_key)


@pytest.fixture
def fast_jobs(project: Project) -> dict[str, Any]:
    """The project's export knobs, set for jobs that finish as soon as they start: small files."""
    settings = export_settings(project)
    settings.update(
        rows_per_hour=300, file_size_bytes=8_000, bytes_per_second=10**12, start_delay_seconds=0
    )
    return settings


@pytest.fixture
def template(project: Project) -> dict[str, Any]:
    """The email template ``_seeds.TEMPLATE_ID`` in the project."""
    return _seeds.email_template(project)


@pytest.fixture
def audience(project: Project) -> UserList:
    """The list ``_seeds.AUDIENCE_ID`` of three users known by email."""
    return _seeds.email_list(project, _seeds.AUDIENCE_ID, *_seeds.AUDIENCE)


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
def credentials_for(sandbox_server: SandboxServer) -> Callable[..., IterableCredentials]:
    """Credentials for another project's key (from ``make_project``), all tiers by default."""

    def make(key: str, permissions: list[str] | None = None) -> IterableCredentials:
        return IterableCredentials(
            api_key=key,
            base_url=sandbox_server.url,
            permissions=permissions or ALL_PERMISSIONS,
            timeout=5.0,
        )

    return make


@pytest.fixture
def client(credentials: IterableCredentials) -> Iterator[Client]:
    with credentials.get_client() as c:
        yield c


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One real Prefect server (the test harness) for every test that runs tasks or flows.

    It took 75-85 s to start on the shared 2-core machine under load: the timeout is generous.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        with prefect_test_harness(server_startup_timeout=240):
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "own_organization: the test's project is alone in a new organization"
    )
