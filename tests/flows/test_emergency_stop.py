"""The emergency_stop flow against the sandbox, on a real Prefect test server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows.emergency_stop import StopReport, emergency_stop
from prefect_iterable.sandbox.data import Project, campaigns, now_ms

DAY_MS = 86_400_000


@pytest.fixture
def block_name(prefect_server: None, credentials: IterableCredentials) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    credentials.save(name, overwrite=True)
    return name


def put_campaign(
    project: Project, name: str, state: str, labels: tuple[str, ...] = (), **extra: Any
) -> int:
    """A campaign placed straight into the sandbox's state."""
    campaign_id = project.next_id()
    now = now_ms()
    campaigns(project)[campaign_id] = {
        "id": campaign_id,
        "name": name,
        "templateId": None,
        "messageMedium": "Email",
        "type": "Blast",
        "campaignState": state,
        "listIds": [],
        "suppressionListIds": [],
        "labels": list(labels),
        "createdAt": now,
        "updatedAt": now,
        "createdByUserId": "test@example.com",
        "updatedByUserId": "test@example.com",
        **({"startAt": now + DAY_MS} if state in ("Scheduled", "Recurring") else {}),
        **extra,
    }
    return campaign_id


def state_of(project: Project, campaign_id: int) -> str:
    return campaigns(project)[campaign_id]["campaignState"]


def stops(sandbox: Any, project: Project) -> dict[str, list[int]]:
    return {
        action: [
            e.body["campaignId"]
            for e in sandbox.state.requests(f"ITERABLE_{action}_CAMPAIGN", project_id=project.id)
        ]
        for action in ("ABORT", "CANCEL")
    }


@pytest.fixture
def mix(project: Project) -> dict[str, int]:
    return {
        "running": put_campaign(project, "Promo running", "Running", ("Promotion",)),
        "starting": put_campaign(project, "Promo starting", "Starting"),
        "scheduled": put_campaign(project, "PROMO scheduled", "Scheduled", ("Promotion",)),
        "recurring": put_campaign(project, "Promo recurring", "Recurring"),
        "finished": put_campaign(project, "Promo finished", "Finished", ("Promotion",)),
        "ready": put_campaign(project, "Promo ready", "Ready"),
        "other": put_campaign(project, "Newsletter", "Scheduled", ("Newsletter",)),
        "other_running": put_campaign(project, "Weekly digest", "Running"),
    }


def test_stops_matching_campaigns_by_name_pattern(
    sandbox: Any, project: Project, block_name: str, mix: dict[str, int]
) -> None:
    state = emergency_stop(name_pattern="promo *", credentials_block=block_name, return_state=True)
    report = state.result()
    assert isinstance(report, StopReport)

    assert sorted(report.aborted) == sorted([mix["running"], mix["starting"]])
    assert sorted(report.cancelled) == sorted([mix["scheduled"], mix["recurring"]])
    assert sorted(report.skipped) == sorted([mix["finished"], mix["ready"]])
    assert report.matched == 6 and not report.failed and not report.not_found
    outcomes = {r.campaign_id: (r.state_before, r.action, r.outcome) for r in report.rows}
    assert outcomes[mix["finished"]] == ("Finished", "skip", "skipped (Finished)")
    assert outcomes[mix["running"]] == ("Running", "abort", "aborted")

    # The sandbox received exactly these stops, and the states changed.
    sent = stops(sandbox, project)
    assert sorted(sent["ABORT"]) == sorted([mix["running"], mix["starting"]])
    assert sorted(sent["CANCEL"]) == sorted([mix["scheduled"], mix["recurring"]])
    assert state_of(project, mix["running"]) == "Aborted"
    assert state_of(project, mix["starting"]) == "Aborted"
    assert state_of(project, mix["scheduled"]) not in ("Scheduled", "Recurring")
    assert state_of(project, mix["other"]) == "Scheduled"
    assert state_of(project, mix["other_running"]) == "Running"

    # The report artifact has one row per matching campaign.
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    report_artifact = [a for a in artifacts if a.key == "emergency-stop-report"]
    assert len(report_artifact) == 1 and report_artifact[0].type == "table"
    assert "Promo running" in str(report_artifact[0].data)

    # A second run is safe: everything is already stopped and is skipped.
    again = emergency_stop(name_pattern="promo *", credentials_block=block_name)
    assert again.aborted == [] and again.cancelled == []
    assert stops(sandbox, project) == sent


def test_label_and_ids_select_with_any_or_all(
    sandbox: Any, project: Project, block_name: str, mix: dict[str, int]
) -> None:
    report = emergency_stop(
        label="promotion",
        campaign_ids=[mix["other_running"], 999_999],
        credentials_block=block_name,
    )
    assert sorted(report.aborted) == sorted([mix["running"], mix["other_running"]])
    assert report.cancelled == [mix["scheduled"]]
    assert report.skipped == [mix["finished"]]
    assert report.not_found == [999_999]

    narrowed = emergency_stop(
        label="Newsletter", name_pattern="promo*", match="all", credentials_block=block_name
    )
    assert narrowed.matched == 0
    assert state_of(project, mix["other"]) == "Scheduled"


def test_dry_run_changes_nothing(
    sandbox: Any, project: Project, block_name: str, mix: dict[str, int]
) -> None:
    before = {k: state_of(project, v) for k, v in mix.items()}
    report = emergency_stop(name_pattern="Promo*", dry_run=True, credentials_block=block_name)

    assert report.dry_run and report.matched == 6
    assert report.aborted == [] and report.cancelled == []
    outcomes = {r.campaign_id: r.outcome for r in report.rows}
    assert outcomes[mix["running"]] == "would abort"
    assert outcomes[mix["recurring"]] == "would cancel"
    assert outcomes[mix["ready"]] == "skipped (Ready)"
    assert stops(sandbox, project) == {"ABORT": [], "CANCEL": []}
    assert {k: state_of(project, v) for k, v in mix.items()} == before


@pytest.mark.parametrize(
    "selectors", [{}, {"campaign_ids": []}, {"label": "  "}, {"name_pattern": ""}]
)
def test_no_selector_fails_before_any_request(
    sandbox: Any, project: Project, block_name: str, selectors: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="at least one selector"):
        emergency_stop(credentials_block=block_name, **selectors)
    assert sandbox.state.requests(project_id=project.id) == []
