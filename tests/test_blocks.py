"""The credentials block: Prefect's standard block checks, clients, permissions, registration."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from prefect_iterable.api import AsyncClient, Client
from prefect_iterable.api.catalog import get_action
from prefect_iterable.blocks import IterableCredentials, MissingPermission


class TestIterableCredentialsStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self):
        return IterableCredentials


def test_clients_come_from_region_or_base_url():
    creds = IterableCredentials(api_key="k", region="eu")
    with creds.get_client() as client:
        assert isinstance(client, Client) and client.base_url == "https://api.eu.iterable.com"
    assert IterableCredentials(api_key="k").get_client().base_url == "https://api.iterable.com"
    client = IterableCredentials(api_key="k", base_url="http://127.0.0.1:1/").get_async_client()
    assert isinstance(client, AsyncClient) and client.base_url == "http://127.0.0.1:1"


def test_default_permissions_read_and_write_only():
    creds = IterableCredentials(api_key="k")
    creds.check_permission(get_action("list_campaigns"))
    creds.check_permission(get_action("create_campaign"), {"schedule_send": False})
    with pytest.raises(MissingPermission, match="'send' permission"):
        creds.check_permission(get_action("send_campaign"))
    with pytest.raises(MissingPermission, match="'delete' permission"):
        creds.check_permission(get_action("forget_user"))


def test_a_campaign_created_to_be_scheduled_needs_send():
    """Iterable schedules a new blast at sendAt unless scheduleSend is false: that is a send."""
    creds = IterableCredentials(api_key="k")  # read and write
    create = get_action("create_campaign")
    creds.check_permission(create, {"list_ids": [1], "schedule_send": False})
    with pytest.raises(MissingPermission, match="'send' permission"):
        creds.check_permission(create, {"list_ids": [1], "send_at": "2026-12-01 10:00:00"})


def test_a_task_outside_the_tiers_refuses_before_any_request(
    run_in_flow, sandbox_server, sandbox, project, api_key
):
    from prefect_iterable.tasks.channels import list_channels

    read_only = IterableCredentials(
        api_key=api_key, base_url=sandbox_server.url, permissions=["write"]
    )
    with pytest.raises(MissingPermission, match="'read' permission"):
        run_in_flow(list_channels, credentials=read_only)
    assert sandbox.state.requests(project_id=project.id) == []


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ITERABLE_API_KEY", "env-key")
    monkeypatch.setenv("ITERABLE_REGION", "eu")
    monkeypatch.setenv("ITERABLE_PERMISSIONS", "read,send")
    creds = IterableCredentials.from_env()
    assert creds.api_key.get_secret_value() == "env-key" and creds.region == "eu"
    assert creds.permissions == ["read", "send"]
    monkeypatch.delenv("ITERABLE_API_KEY")
    with pytest.raises(ValueError, match="ITERABLE_API_KEY"):
        IterableCredentials.from_env()


def test_saved_block_round_trips_and_registers_from_the_cli(prefect_server):
    from prefect.settings import PREFECT_API_URL

    creds = IterableCredentials(api_key="saved-key", region="eu", permissions=["read"])
    creds.save("test-roundtrip", overwrite=True)
    loaded = IterableCredentials.load("test-roundtrip")
    assert loaded.api_key.get_secret_value() == "saved-key" and loaded.permissions == ["read"]

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "prefect_iterable.blocks"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Iterable Credentials" in done.stdout


def test_the_block_is_a_prefect_collection():
    from importlib.metadata import entry_points

    names = {ep.value for ep in entry_points(group="prefect.collections")}
    assert "prefect_iterable.blocks" in names
