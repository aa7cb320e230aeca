"""Four flows at once on one API key, through the shared limits: no 429, all complete.

A campaign launch, a bulk import of a few hundred users, an export archive and a GDPR forget of
a few users run together in one process (one thread each) against ONE sandbox project and key,
with the sandbox enforcing Iterable's documented limits. The client's token buckets are
process-wide and keyed by project, organization and key, so the four flows draw from the same
budgets (bulk updates 5/s and forgets 3/s per project, exports 1/s per organization, proofs 20/s
per key …). The sandbox's own log of the project must show every request answered, none with 429,
and the four flows' requests interleaved: the test holds requests until the log shows what
they wait for, so that the overlap is a fact of the log's order, not of the machine's speed.

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
from collections import Counter
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
IMPORTED = 600
BATCH = 50  # users per bulkUpdate request
FORGOTTEN = 6
REVIEWERS = ["reviewer.one@example.com", "reviewer.two@example.com"]
OTHERS = ("campaign_launch", "export_archive", "gdpr_forget")  # besides bulk_import


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


def _flow_of(action_id: str | None) -> str:
    """Which of the four flows sends this action (campaign launch: all the others)."""
    for marker, name in (
        ("EXPORT", "export_archive"),
        ("FORGET", "gdpr_forget"),
        ("BULK_UPDATE", "bulk_import"),
    ):
        if marker in (action_id or ""):
            return name
    return "campaign_launch"


def _users_file(path: Path) -> Path:
    with path.open("w") as out:
        for n in range(IMPORTED):
            record = {"email": f"load{n:05d}@example.com", "dataFields": {"n": n, "plan": "pro"}}
            out.write(json.dumps(record) + "\n")
    return path


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
            # 12 requests: the others' requests are held to fall between the first and last.
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

    # Make the four overlap by construction, not by luck: every request of the other three flows
    # waits until the bulk import's first request is in the sandbox's log, and every later bulk
    # request waits until each of the other three has one there. The log's sequence numbers then
    # show each flow's requests between the bulk import's first and last, whatever the machine's
    # load. The block's client asks check_permission before each request it sends; flows send
    # from task-runner threads, so a request is told apart by its action, not its thread.
    bulk_checks = 0
    lock = threading.Lock()
    real_check = IterableCredentials.check_permission

    seen: set[str] = set()  # flows with a request in the log: only ever grows
    reading = threading.Lock()  # one waiter reads the log at a time, for all of them

    def wait_for(flows: set[str], who: str) -> None:
        deadline = time.monotonic() + 120
        while not flows <= seen:
            with reading:
                try:  # the sandbox's thread appends to the log meanwhile: read it again then
                    log = sandbox.state.requests(project_id=project.id)
                except RuntimeError:
                    continue
                seen.update(_flow_of(e.action) for e in log)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{who} waited in vain for {sorted(flows - seen)}")
            time.sleep(0.05)

    def check_then_wait(self: IterableCredentials, action: Any, values: Any = None) -> None:
        nonlocal bulk_checks
        real_check(self, action, values)
        flow_name = _flow_of(action.id)
        if flow_name != "bulk_import":
            wait_for({"bulk_import"}, flow_name)
            return
        with lock:
            bulk_checks += 1
            first = bulk_checks == 1
        if not first:
            wait_for(set(OTHERS), flow_name)

    monkeypatch.setattr(IterableCredentials, "check_permission", check_then_wait)

    with ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="load") as pool:
        futures = {name: pool.submit(fn) for name, fn in runs.items()}
        results = {name: future.result(timeout=240) for name, future in futures.items()}

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

    # The sandbox answered every request of this project with a 2xx, never 429, and holds
    # exactly the requests the results account for.
    log = sandbox.state.requests(project_id=project.id)
    statuses = [e.status for e in log]
    assert 429 not in statuses, [(e.action, e.status) for e in log if e.status == 429]
    assert all(200 <= s < 300 for s in statuses), sorted(
        {(e.action, e.status) for e in log if not 200 <= e.status < 300}
    )
    sent = Counter(e.action for e in log)
    assert sent["ITERABLE_BULK_UPDATE_USERS"] == IMPORTED // BATCH
    assert sent["ITERABLE_FORGET_USER"] == FORGOTTEN
    assert sent["ITERABLE_SEND_EMAIL_PROOF"] == len(REVIEWERS)
    assert sent["ITERABLE_START_EXPORT"] == len(archived.data_types)
    assert sent["ITERABLE_CREATE_CAMPAIGN"] == 1
    # They ran together: each flow has requests between the bulk import's first and last.
    bulk = [e.seq for e in log if e.action == "ITERABLE_BULK_UPDATE_USERS"]
    for flow_name in set(OTHERS):
        between = [e for e in log if _flow_of(e.action) == flow_name and bulk[0] < e.seq < bulk[-1]]
        assert between, (flow_name, [(e.seq, e.action) for e in log])
    if rate_limit_mode == "prefect":  # the server's limits, not local buckets, paced them
        limiter = IterableCredentials.load_or_env(block).get_client().limiter
        assert isinstance(limiter, PrefectGlobalLimiter)
        assert limiter.stats["slots"] >= len(bulk) + FORGOTTEN, limiter.stats
