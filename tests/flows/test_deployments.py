"""prefect.yaml deploys to a real local Prefect server: schedules, UI runs and the GDPR trigger."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests._prefect_server import LocalPrefect, deployed_prefect  # noqa: F401 - a fixture


@pytest.mark.timeout(900)  # a hang guard: starting the server and deploying is part of it
def test_prefect_deploy_all_creates_every_deployment(
    deployed_prefect: LocalPrefect,  # noqa: F811
) -> None:
    """The fixture ran `prefect deploy --all` on prefect.yaml; this is what it created."""
    api = deployed_prefect.api
    deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=30).json()
    by_name = {d["name"]: d for d in deployments}
    assert set(by_name) == {
        "export-archive-nightly",
        "campaign-launch",
        "emergency-stop",
        "bulk-import",
        "gdpr-forget",
        "suppress-user",
    }
    # One naming convention: kebab-case flow names, `prefect deployment run FLOW/DEPLOYMENT`.
    flows = httpx.post(f"{api}/flows/filter", json={}, timeout=30).json()
    assert {f["name"] for f in flows} == {
        "export-archive",
        "campaign-launch",
        "emergency-stop",
        "bulk-import",
        "gdpr-forget",
        "suppress-user",
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
    by_deployment = {a["actions"][0]["deployment_id"]: a for a in automations}
    gdpr = by_deployment[by_name["gdpr-forget"]["id"]]
    assert gdpr["trigger"]["expect"] == ["iterable.gdpr.request"]
    # The event carries a ticket, never identifiers.
    assert gdpr["actions"][0]["parameters"] == {"request": "{{ event.payload.ticket }}"}
    suppress = by_deployment[by_name["suppress-user"]["id"]]
    assert set(suppress["trigger"]["expect"]) == {
        "iterable.email.bounce",
        "iterable.email.complaint",
    }
    spike = by_deployment[by_name["emergency-stop"]["id"]]
    assert spike["trigger"]["expect"] == ["iterable.email.unsubscribe"]
    assert spike["trigger"]["threshold"] == 50
    assert spike["actions"][0]["parameters"]["dry_run"] is True
    # That the GDPR trigger fires and runs is the next test's.


def _everything_prefect_kept(home: Path) -> bytes:
    """Every byte under PREFECT_HOME: the database (and its WAL), logs, stored results."""
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


@pytest.mark.timeout(900)  # a hang guard: the module's first test also starts the server
def test_event_triggered_gdpr_run_and_webhook_events_leave_no_identifier_in_prefect(
    deployed_prefect: LocalPrefect,  # noqa: F811
    sandbox_server,
    sandbox,
) -> None:
    """A request and webhooks about marked addresses: not one occurrence left in Prefect."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from prefect_iterable.blocks import IterableCredentials
    from prefect_iterable.sandbox.data import User, users
    from prefect_iterable.webhooks import ReceiverSettings, WebhookReceiver
    from prefect_iterable.webhooks.server import ReceiverServer

    local = deployed_prefect
    api = local.api
    marker = f"pii{uuid.uuid4().hex[:10]}"
    marked = [f"{marker}.one@example.com", f"{marker}.two@example.com"]
    key = "itbl-test-" + uuid.uuid4().hex
    project = sandbox.add_project(key)
    for email in marked:
        users(project).add(User(email=email, user_id=None, data_fields={}))
    # The default place of request files, as the worker's runs see it (their HOME).
    requests_dir = local.worker_home / ".prefect-iterable" / "gdpr-requests"

    with temporary_settings(updates={PREFECT_API_URL: api}):
        IterableCredentials(
            api_key=key, base_url=sandbox_server.url, permissions=["read", "write", "delete"]
        ).save("iterable", overwrite=True)
    gdpr_id = local.deployment("gdpr-forget")["id"]
    ticket = f"T-{uuid.uuid4().hex[:8]}"  # a ticket names no one
    # Submitted from its own process, as an operator would: this process's event worker may be
    # bound to another test's Prefect server (an EventsWorker is one per process and client
    # type, and takes the API URL in force when it starts): the event would never reach this one.
    local.python(
        "-c",
        "import sys; from prefect_iterable.flows.gdpr import submit_gdpr_request; "
        "submit_gdpr_request(sys.argv[1:3], ticket=sys.argv[3], request_storage=sys.argv[4])",
        *marked,
        ticket,
        str(requests_dir),
    )
    local.wait_for_run(gdpr_id, lambda r: r["parameters"].get("request") == ticket, {"Completed"})

    # The same check on the webhook receiver's events (it posts to the API URL in force).
    with temporary_settings(updates={PREFECT_API_URL: api}):
        app = WebhookReceiver(ReceiverSettings(header_name="X-Secret", header_secret="s"))
        with ReceiverServer(app) as receiver:
            for n, email in enumerate(marked):
                body = {
                    "email": email,
                    "eventName": "emailUnSubscribe",
                    "dataFields": {"email": email, "campaignId": 5, "messageId": f"{ticket}-{n}"},
                }
                answer = httpx.post(receiver.url, json=body, headers={"X-Secret": "s"}, timeout=60)
                assert answer.status_code == 200  # 200 only once Prefect has the event

    assert all(users(project).is_forgotten(email=e) for e in marked)
    assert list(requests_dir.iterdir()) == []  # the request file is gone once audited
    audit = b"".join(
        p.read_bytes() for p in (local.worker_home / ".prefect-iterable").rglob("*.jsonl")
    )
    assert audit.count(b'"outcome":"forgotten"') == 2

    # The unsubscribe events reached Prefect (about the users' hashes); the server stores
    # events it accepted in batches, so they are looked for until they are there.
    events: list[dict] = []
    for _ in range(120):
        events = httpx.post(
            f"{api}/events/filter",
            json={"filter": {"event": {"name": ["iterable.email.unsubscribe"]}}},
            timeout=30,
        ).json()["events"]
        if len(events) >= 2:
            break
        time.sleep(0.5)
    assert len(events) == 2
    # … and not one byte of Prefect's state, logs or events holds a marked identifier.
    assert marker.encode() not in _everything_prefect_kept(local.home)
    assert marker not in local.worker_output()
    for kind in ("logs", "artifacts", "flow_runs", "task_runs"):
        found = httpx.post(f"{api}/{kind}/filter", json={}, timeout=30).text
        assert marker not in found, kind
