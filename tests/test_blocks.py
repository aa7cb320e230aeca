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


def test_get_client_is_shared_per_block_identity_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    creds = IterableCredentials(api_key="k-shared", base_url="http://127.0.0.1:1")
    with ThreadPoolExecutor(8) as pool:
        clients = set(pool.map(lambda _: id(creds.get_client()), range(32)))
    assert len(clients) == 1
    same = IterableCredentials(api_key="k-shared", base_url="http://127.0.0.1:1")
    assert same.get_client() is creds.get_client()
    # Another key, URL or set of permissions is another client.
    assert IterableCredentials(
        api_key="k-other", base_url="http://127.0.0.1:1"
    ).get_client() is not (creds.get_client())
    wider = IterableCredentials(
        api_key="k-shared", base_url="http://127.0.0.1:1", permissions=["read", "write", "send"]
    )
    assert wider.get_client() is not creds.get_client()
    # Options make a client of the caller's own; a closed shared client is replaced.
    with creds.get_client(timeout=1.0) as own:
        assert own is not creds.get_client()
    shared = creds.get_client()
    shared.close()
    assert creds.get_client() is not shared and not creds.get_client().is_closed


async def test_get_async_client_is_shared_within_an_event_loop():
    creds = IterableCredentials(api_key="k-async", base_url="http://127.0.0.1:1")
    client = creds.get_async_client()
    assert isinstance(client, AsyncClient) and creds.get_async_client() is client


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_the_blocks_client_refuses_a_tier_not_granted_before_sending(
    sandbox_server, sandbox, project, api_key, asynchronous
):
    creds = IterableCredentials(api_key=api_key, base_url=sandbox_server.url)  # read, write
    with pytest.raises(MissingPermission, match="'delete' permission"):
        if asynchronous:
            await creds.get_async_client().call("ITERABLE_FORGET_USER", email="a@example.com")
        else:
            creds.get_client().call("ITERABLE_FORGET_USER", email="a@example.com")
    with pytest.raises(MissingPermission, match="'send' permission"):
        with creds.get_client().stream("ITERABLE_SEND_CAMPAIGN", campaign_id=1):
            pass
    assert sandbox.state.requests(project_id=project.id) == []
    assert creds.get_client().call("ITERABLE_LIST_CHANNELS")["channels"]


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


def test_limits_create_makes_missing_limits_and_updates_stale_ones(prefect_server, capsys):
    """``python -m prefect_iterable.blocks.limits create`` on a server whose limit for export file
    listing was made with other margins: it is brought up to the settings the limiter expects."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    from prefect_iterable.blocks.limits import limit_name, limit_settings, main

    action = get_action("ITERABLE_LIST_EXPORT_FILES")  # 1 request/s: its margin is in the gap
    name = limit_name(action)
    slots, decay = limit_settings(action)
    assert (slots, round(decay, 3)) == (1, 0.9)
    with get_client(sync_client=True) as client:
        try:
            client.delete_global_concurrency_limit_by_name(name)
        except ObjectNotFound:  # a fresh server has none yet
            pass
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=1, slot_decay_per_second=0.99)
        )

        def reported() -> str:
            out = capsys.readouterr().out.splitlines()
            return next(line for line in out if line.startswith(name + " "))

        main(["show"])
        assert "differs (1 slots, 0.9900/s)" in reported()
        main(["create"])
        assert reported().endswith("updated")
        gcl = client.read_global_concurrency_limit_by_name(name)
        assert (gcl.limit, round(gcl.slot_decay_per_second, 3)) == (1, 0.9)
        main(["create"])  # idempotent
        assert reported().endswith("exists")
