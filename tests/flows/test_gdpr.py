"""The GDPR forget flow against the sandbox, on the real Prefect test server."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.blocks.credentials import MissingPermission
from prefect_iterable.flows.gdpr import gdpr_forget, load_identifiers
from prefect_iterable.sandbox.data import User, identifier_hash, users

FORGET = "ITERABLE_FORGET_USER"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def block_name(prefect_server, credentials: IterableCredentials) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    credentials.save(name, overwrite=True)
    return name


def audit_lines(directory: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("audit-*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def forgets(sandbox, project_id: int, status: int | None = 200) -> list[dict]:
    return [
        e.body
        for e in sandbox.state.requests(FORGET, project_id=project_id)
        if status is None or e.status == status
    ]


def test_forgets_users_and_audits_hashes_only(sandbox, project, block_name, tmp_path):
    store = users(project)
    for email in ("alice@example.com", "bob@example.com", "carol@example.com"):
        store.add(User(email=email, user_id=None, data_fields={"plan": "gold"}))
    audit_dir = tmp_path / "audit"

    result = gdpr_forget(
        identifiers=[" Alice@Example.com", "bob@example.com", "alice@example.com "],
        identifiers_file=None,
        audit_storage=str(audit_dir),
        credentials_block=block_name,
    )

    assert (result.requested, result.forgotten, result.failed, result.deferred) == (2, 2, 0, 0)
    assert result.remainder == []
    assert store.is_forgotten(email="alice@example.com")
    assert store.is_forgotten(email="bob@example.com")
    assert store.find(email="alice@example.com") is None
    assert store.find(email="carol@example.com") is not None  # not asked for
    assert sorted(b["email"] for b in forgets(sandbox, project.id)) == [
        "alice@example.com",
        "bob@example.com",
    ]
    lines = audit_lines(audit_dir)
    assert {(line["sha256"], line["outcome"]) for line in lines} == {
        (sha("alice@example.com"), "forgotten"),
        (sha("bob@example.com"), "forgotten"),
    }
    assert all(line["flow_run_id"] == result.flow_run_id for line in lines)
    assert all(set(line) == {"sha256", "at", "outcome", "flow_run_id"} for line in lines)
    files = list(audit_dir.iterdir())
    assert [f.name for f in files] == [Path(result.audit_file).name]
    assert result.flow_run_id in files[0].name
    text = files[0].read_text().lower()
    assert "alice" not in text and "bob" not in text and "example.com" not in text

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        (summary,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[result.flow_run_id])
            )
        )
    assert summary.key == "gdpr-forget-summary"
    rows = {row["outcome"]: row["count"] for row in json.loads(summary.data)}
    assert rows["forgotten"] == 2 and rows["deferred"] == 0
    assert "example.com" not in summary.data + (summary.description or "")


def test_daily_cap_stops_cleanly_and_a_rerun_finishes_without_reforgetting(
    sandbox, project, block_name, tmp_path
):
    project.forget_daily_cap = 3
    emails = [f"user{i}@example.com" for i in range(5)]
    audit_dir = tmp_path / "audit"

    first = gdpr_forget(
        identifiers=emails, audit_storage=str(audit_dir), credentials_block=block_name
    )

    assert (first.forgotten, first.deferred, first.failed) == (3, 2, 0)
    assert first.remainder == emails[3:]
    assert first.stop_reason and "RateLimitExceeded" in first.stop_reason
    deferred = {line["sha256"] for line in audit_lines(audit_dir) if line["outcome"] == "deferred"}
    assert deferred == {sha(e) for e in emails[3:]}

    project.forget_daily_cap = 1000
    second = gdpr_forget(
        identifiers=emails, audit_storage=str(audit_dir), credentials_block=block_name
    )

    assert (second.skipped, second.forgotten, second.deferred) == (3, 2, 0)
    assert second.remainder == []
    accepted = [b["email"] for b in forgets(sandbox, project.id)]
    assert sorted(accepted) == sorted(emails)  # each forgotten exactly once
    assert all(users(project).is_forgotten(email=e) for e in emails)
    assert len(list(audit_dir.glob("audit-*.jsonl"))) == 2  # one new file per run


def test_verifies_forgotten_user_ids_in_a_user_id_project(
    sandbox, sandbox_server, make_project, prefect_server, tmp_path
):
    key, project = make_project(identity="userId")
    store = users(project)
    store.add(User(email=None, user_id="U-1"))
    creds = IterableCredentials(
        api_key=key, base_url=sandbox_server.url, permissions=["read", "write", "delete"]
    )
    name = f"test-{uuid.uuid4().hex[:12]}"
    creds.save(name, overwrite=True)

    result = gdpr_forget(
        identifiers=["U-1", "u-2"],
        identifier_type="userId",
        audit_storage=str(tmp_path),
        credentials_block=name,
    )

    assert (result.forgotten, result.verified, result.unverified) == (2, 2, 0)
    assert identifier_hash("U-1") in store.forgotten_user_ids
    assert [b["userId"] for b in forgets(sandbox, project.id)] == ["U-1", "u-2"]
    assert (
        len(sandbox.state.requests("ITERABLE_LIST_FORGOTTEN_USER_IDS", project_id=project.id)) == 1
    )
    outcomes = {(line["sha256"], line["outcome"]) for line in audit_lines(tmp_path)}
    assert (sha("U-1"), "verified") in outcomes and (sha("u-2"), "verified") in outcomes


def test_reads_identifiers_from_files(tmp_path):
    plain = tmp_path / "ids.txt"
    plain.write_text("a@example.com\n\n  B@Example.com \n")
    table = tmp_path / "ids.csv"
    table.write_text("name,email\nAnn,ann@example.com\nBen,a@example.com\n")
    both = load_identifiers(None, str(plain)) + load_identifiers(None, str(table))
    assert [i.value for i in both] == [
        "a@example.com",
        "b@example.com",
        "ann@example.com",
        "a@example.com",
    ]
    assert [i.value for i in load_identifiers('["x-1", "y@example.com"]', None)] == [
        "x-1",
        "y@example.com",
    ]
    assert [i.kind for i in load_identifiers("x-1, y@example.com", None)] == ["userId", "email"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"identifiers": ["a@example.com", "   "]}, "identifiers[1]: empty identifier"),
        ({"identifiers": ["u-1"], "identifier_type": "email"}, "identifiers[0]: not an email"),
        ({"identifiers": ["a@b"]}, "identifiers[0]: looks like an email"),
        ({"identifiers_file": "/nonexistent/ids.txt"}, "identifiers_file: cannot read"),
        ({}, "give request, identifiers or identifiers_file"),
    ],
)
def test_bad_input_raises_before_any_request(
    sandbox, project, block_name, tmp_path, kwargs, message
):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        gdpr_forget(audit_storage=str(tmp_path), credentials_block=block_name, **kwargs)
    assert sandbox.state.requests(project_id=project.id) == []
    assert list(tmp_path.iterdir()) == []


def test_refused_without_the_delete_permission(
    sandbox, sandbox_server, api_key, project, prefect_server, tmp_path
):
    name = f"test-{uuid.uuid4().hex[:12]}"
    IterableCredentials(
        api_key=api_key, base_url=sandbox_server.url, permissions=["read", "write"]
    ).save(name, overwrite=True)
    with pytest.raises(MissingPermission, match="'delete' permission"):
        gdpr_forget(
            identifiers=["a@example.com"], audit_storage=str(tmp_path), credentials_block=name
        )
    assert sandbox.state.requests(project_id=project.id) == []


def test_audit_storage_in_a_filesystem_block(sandbox, project, block_name, tmp_path):
    from prefect.filesystems import LocalFileSystem

    block = f"audit-{uuid.uuid4().hex[:8]}"
    LocalFileSystem(basepath=str(tmp_path / "in-block")).save(block, overwrite=True)

    result = gdpr_forget(
        identifiers=["dora@example.com"],
        audit_storage=f"local-file-system/{block}",
        credentials_block=block_name,
    )

    assert result.forgotten == 1
    assert [line["outcome"] for line in audit_lines(tmp_path / "in-block")] == ["forgotten"]


def test_a_submitted_request_is_forgotten_then_deleted(sandbox, project, block_name, tmp_path):
    from prefect_iterable.flows.gdpr import submit_gdpr_request

    project.forget_daily_cap = 2
    requests_dir = tmp_path / "requests"
    emails = ["req1@example.com", "req2@example.com", "req3@example.com"]
    ticket = submit_gdpr_request(emails, ticket="T-1001", request_storage=str(requests_dir))
    params = {
        "request": ticket,
        "request_storage": str(requests_dir),
        "audit_storage": str(tmp_path / "audit"),
        "credentials_block": block_name,
    }

    first = gdpr_forget(**params)

    # Stopped by the daily cap: the request file keeps only what is still to do.
    assert (first.forgotten, first.deferred) == (2, 1)
    left = json.loads((requests_dir / "request-T-1001.json").read_text())
    assert left == {"identifiers": ["req3@example.com"]}

    project.forget_daily_cap = 1000
    second = gdpr_forget(**params)

    assert (second.forgotten, second.deferred) == (1, 0)
    assert list(requests_dir.iterdir()) == []  # audited, then deleted
    with pytest.raises(ValueError, match="T-1001"):
        gdpr_forget(**params)  # nothing left to forget for that ticket
    assert sorted(b["email"] for b in forgets(sandbox, project.id)) == emails


def test_two_concurrent_runs_forget_and_audit_each_identifier_once(
    sandbox, project, block_name, tmp_path
):
    from concurrent.futures import ThreadPoolExecutor

    emails = [f"twice{i}@example.com" for i in range(12)]
    audit_dir = tmp_path / "audit"

    def run(order: list[str]):
        return gdpr_forget(
            identifiers=order,
            audit_storage=str(audit_dir),
            credentials_block=block_name,
            verify=False,
            batch_size=4,
        )

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, [emails, emails[::-1]]))

    accepted = [b["email"] for b in forgets(sandbox, project.id, status=None)]
    assert sorted(accepted) == sorted(emails)  # not one identifier forgotten twice
    forgotten = [
        line["sha256"] for line in audit_lines(audit_dir) if line["outcome"] == "forgotten"
    ]
    assert sorted(forgotten) == sorted(sha(e) for e in emails)
    assert sum(r.forgotten for r in results) == 12
    assert sum(r.skipped for r in results) == 12
