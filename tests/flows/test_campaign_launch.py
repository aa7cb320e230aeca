"""The campaign_launch flow against the sandbox, on a real Prefect test server."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from prefect import tags
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterTags,
)
from prefect.exceptions import ParameterTypeError
from prefect.flow_runs import resume_flow_run

import prefect_iterable.flows.campaign_launch as launch_module
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows.campaign_launch import EmailTemplateSpec, LaunchResult, campaign_launch
from prefect_iterable.sandbox.data import (
    Project,
    User,
    UserList,
    campaigns,
    lists,
    messages,
    templates,
    users,
)

REVIEWERS = ["reviewer.one@example.com", "reviewer.two@example.com"]
SENDS = (
    "ITERABLE_UPSERT_EMAIL_TEMPLATE",
    "ITERABLE_CREATE_CAMPAIGN",
    "ITERABLE_SEND_EMAIL_PROOF",
    "ITERABLE_SCHEDULE_CAMPAIGN",
    "ITERABLE_SEND_CAMPAIGN",
)


@pytest.fixture(autouse=True)
def fast_approval_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch_module, "APPROVAL_POLL_SECONDS", 1)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The (event, resource id) pairs the flow emits; they still reach Prefect."""
    seen: list[tuple[str, str]] = []
    real = launch_module.emit_event

    def record(event: str, resource: dict[str, str], **kwargs: Any) -> Any:
        seen.append((event, resource["prefect.resource.id"]))
        return real(event=event, resource=resource, **kwargs)

    monkeypatch.setattr(launch_module, "emit_event", record)
    return seen


@pytest.fixture
def block_name(prefect_server: None, credentials: IterableCredentials) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    credentials.save(name, overwrite=True)
    return name


@pytest.fixture
def audience(project: Project) -> int:
    """A list of three subscribers, and the reviewers as users of the project."""
    store = users(project)
    list_id = project.next_id()
    audience = UserList(id=list_id, name="Launch audience")
    for n in range(3):
        user = store.add(User(email=f"subscriber{n}@example.com", user_id=None))
        audience.members[user.email] = user
    lists(project)[list_id] = audience
    for email in REVIEWERS:
        store.add(User(email=email, user_id=None))
    return list_id


def spec(client_id: str = "spring-sale") -> EmailTemplateSpec:
    return EmailTemplateSpec(
        client_template_id=client_id,
        name="Spring sale",
        subject="Spring sale, {{firstName}}",
        html="<html><body><p>Hello {{firstName}}, spring is here.</p></body></html>",
        from_name="Acme",
        from_email="news@acme.example.com",
    )


def in_days(days: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=days)


def calls(sandbox: Any, project: Project, action: str) -> list[Any]:
    return sandbox.state.requests(action, project_id=project.id)


def proofs(project: Project) -> list[dict[str, Any]]:
    return [m for m in messages(project) if m.get("kind") == "proof"]


def named(project: Project, name: str) -> list[dict[str, Any]]:
    return [c for c in campaigns(project).values() if c["name"] == name]


def artifacts_of(flow_run_id: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def test_auto_approved_launch_end_to_end(
    sandbox: Any, project: Project, block_name: str, audience: int, events: list[Any]
) -> None:
    send_at = in_days(2)
    state = campaign_launch(
        campaign_name="Spring sale 2026",
        list_ids=[audience],
        template=spec(),
        proof_recipients=REVIEWERS,
        preview_data={"firstName": "Ada"},
        send_at=send_at,
        auto_approve=True,
        credentials_block=block_name,
        return_state=True,
    )
    assert state.is_completed()
    result = state.result()
    assert isinstance(result, LaunchResult)
    assert result.decision == "approved" and result.state == "Scheduled"
    assert result.created and result.proofs_sent == 2 and result.proofs_skipped == 0

    # The template was upserted once, by its client template id.
    upserts = calls(sandbox, project, "ITERABLE_UPSERT_EMAIL_TEMPLATE")
    assert len(upserts) == 1 and upserts[0].body["clientTemplateId"] == "spring-sale"
    base = [
        t
        for t in templates(project).values()
        if t.get("clientTemplateId") == "spring-sale" and not t.get("campaignId")
    ]
    assert len(base) == 1

    # One campaign, created unscheduled and then scheduled.
    (create,) = calls(sandbox, project, "ITERABLE_CREATE_CAMPAIGN")
    assert create.body["scheduleSend"] is False and "sendAt" not in create.body
    assert create.body["listIds"] == [audience]
    (schedule,) = calls(sandbox, project, "ITERABLE_SCHEDULE_CAMPAIGN")
    assert create.seq < schedule.seq
    assert calls(sandbox, project, "ITERABLE_SEND_CAMPAIGN") == []
    (campaign,) = named(project, "Spring sale 2026")
    assert campaign["id"] == result.campaign_id
    assert campaign["campaignState"] == "Scheduled"
    assert abs(campaign["startAt"] - send_at.timestamp() * 1000) < 1000

    # One proof per reviewer, of the campaign's own template, rendered with the preview data.
    sent = proofs(project)
    assert sorted(p["email"] for p in sent) == REVIEWERS
    assert {p["templateId"] for p in sent} == {campaign["templateId"]}
    assert all(p["dataFields"].get("firstName") == "Ada" for p in sent)

    # The preview artifact shows the rendered content and the settings.
    (preview,) = [
        a
        for a in artifacts_of(state.state_details.flow_run_id)
        if a.key == "campaign-launch-preview"
    ]
    assert "Hello Ada" in preview.data and str(result.campaign_id) in preview.data

    resource = f"iterable.campaign.{result.campaign_id}"
    assert events == [
        ("iterable.campaign.created", resource),
        ("iterable.campaign.approved", resource),
        ("iterable.campaign.scheduled", resource),
    ]


def test_rerun_after_a_crash_finds_the_campaign_and_sends_no_second_proof(
    sandbox: Any, project: Project, block_name: str, audience: int
) -> None:
    params: dict[str, Any] = dict(
        campaign_name="Crash-safe launch",
        list_ids=[audience],
        template=spec("crash-safe"),
        proof_recipients=REVIEWERS,
        send_at=in_days(1),
        auto_approve=True,
        credentials_block=block_name,
    )
    # The first run dies after the proofs, before anyone approved.
    sandbox.inject("ITERABLE_PREVIEW_EMAIL_TEMPLATE", "error", status=400, code="BadParams")
    first = campaign_launch(**params, return_state=True)
    assert first.is_failed()
    assert len(proofs(project)) == 2
    assert named(project, "Crash-safe launch")[0]["campaignState"] == "Ready"

    second = campaign_launch(**params)
    assert not second.created and second.proofs_sent == 0 and second.proofs_skipped == 2
    assert second.state == "Scheduled"
    assert len(calls(sandbox, project, "ITERABLE_CREATE_CAMPAIGN")) == 1
    assert len(calls(sandbox, project, "ITERABLE_SEND_EMAIL_PROOF")) == 2
    assert len(named(project, "Crash-safe launch")) == 1

    # Once scheduled, a re-run changes nothing at all.
    before = {a: len(calls(sandbox, project, a)) for a in SENDS}
    third = campaign_launch(**params)
    assert third.state == "Scheduled" and third.decision == "not-asked"
    assert third.campaign_id == second.campaign_id
    assert {a: len(calls(sandbox, project, a)) for a in SENDS} == before


def test_a_proof_with_an_unknown_outcome_is_not_sent_again(
    sandbox: Any, project: Project, block_name: str, audience: int
) -> None:
    params: dict[str, Any] = dict(
        campaign_name="Flaky proof",
        list_ids=[audience],
        template=spec("flaky-proof"),
        proof_recipients=REVIEWERS[:1],
        auto_approve=True,
        send_at=in_days(1),
        credentials_block=block_name,
    )
    # The proof goes out, but the connection drops before the answer.
    sandbox.inject("ITERABLE_SEND_EMAIL_PROOF", "reset", after_processing=True)
    sandbox.inject("ITERABLE_SCHEDULE_CAMPAIGN", "error", status=400, code="BadParams")
    first = campaign_launch(**params, return_state=True)
    assert first.is_failed()  # the schedule failed: the run is repeated below
    assert len(proofs(project)) == 1

    second = campaign_launch(**params)
    assert second.proofs_sent == 0 and second.proofs_skipped == 1
    assert second.state == "Scheduled"
    assert len(calls(sandbox, project, "ITERABLE_SEND_EMAIL_PROOF")) == 1
    assert len(proofs(project)) == 1


def run_until_paused(
    **params: Any,
) -> tuple[UUID, threading.Thread, dict[str, Any]]:
    """Start the flow in a thread; return its run id once Prefect shows it Paused."""
    tag = f"test-{uuid.uuid4().hex[:12]}"
    outcome: dict[str, Any] = {}

    def run() -> None:
        with tags(tag):
            outcome["state"] = campaign_launch(**params, return_state=True)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]))
            )
            if runs and runs[0].state and runs[0].state.is_paused():
                return runs[0].id, thread, outcome
            assert thread.is_alive(), f"the flow ended before pausing: {outcome}"
            time.sleep(0.2)
    raise AssertionError("the flow run never paused")


@pytest.mark.parametrize("approve", [True, False])
def test_approval_in_the_prefect_ui(
    sandbox: Any,
    project: Project,
    block_name: str,
    audience: int,
    events: list[Any],
    approve: bool,
) -> None:
    flow_run_id, thread, outcome = run_until_paused(
        campaign_name="Needs approval",
        list_ids=[audience],
        template=spec("needs-approval"),
        proof_recipients=REVIEWERS[:1],
        send_at=in_days(3),
        credentials_block=block_name,
    )
    # Paused: proofs are out, nothing is scheduled yet.
    assert len(proofs(project)) == 1
    assert named(project, "Needs approval")[0]["campaignState"] == "Ready"
    assert calls(sandbox, project, "ITERABLE_SCHEDULE_CAMPAIGN") == []

    comment = "ok" if approve else "wrong subject"
    resume_flow_run(flow_run_id, run_input={"approve": approve, "comment": comment})
    thread.join(timeout=30)
    assert not thread.is_alive()
    state = outcome["state"]
    assert state.is_completed()
    result = state.result()
    assert result.comment == comment
    (campaign,) = named(project, "Needs approval")
    if approve:
        assert result.decision == "approved" and result.state == "Scheduled"
        assert campaign["campaignState"] == "Scheduled"
        assert len(calls(sandbox, project, "ITERABLE_SCHEDULE_CAMPAIGN")) == 1
        assert [e for e, _ in events][-2:] == [
            "iterable.campaign.approved",
            "iterable.campaign.scheduled",
        ]
    else:
        assert result.decision == "rejected" and result.state == "Ready"
        assert "left unscheduled" in result.message
        assert campaign["campaignState"] == "Ready"
        assert calls(sandbox, project, "ITERABLE_SCHEDULE_CAMPAIGN") == []
        assert [e for e, _ in events][-1] == "iterable.campaign.rejected"
    assert calls(sandbox, project, "ITERABLE_SEND_CAMPAIGN") == []


def test_approval_timeout_leaves_it_unscheduled(
    sandbox: Any, project: Project, block_name: str, audience: int
) -> None:
    state = campaign_launch(
        campaign_name="Nobody answers",
        list_ids=[audience],
        template=spec("nobody-answers"),
        approval_timeout_seconds=2,
        credentials_block=block_name,
        return_state=True,
    )
    assert state.is_completed()
    result = state.result()
    assert result.decision == "timed-out" and result.state == "Ready"
    assert calls(sandbox, project, "ITERABLE_SCHEDULE_CAMPAIGN") == []
    assert calls(sandbox, project, "ITERABLE_SEND_CAMPAIGN") == []


def test_send_now_with_an_existing_template(
    sandbox: Any, project: Project, block_name: str, audience: int, client: Any
) -> None:
    client.call("ITERABLE_UPSERT_EMAIL_TEMPLATE", spec("existing").model_dump(exclude_none=True))
    found = client.call("ITERABLE_GET_TEMPLATE_BY_CLIENT_ID", client_template_id="existing")
    template_id = found["templates"][0]["templateId"]

    result = campaign_launch(
        campaign_name="Send right away",
        list_ids=[audience],
        template_id=template_id,
        auto_approve=True,
        credentials_block=block_name,
    )
    assert result.decision == "approved" and result.state == "Finished"
    assert result.template_id != template_id  # the campaign sends its own copy
    assert len(calls(sandbox, project, "ITERABLE_SEND_CAMPAIGN")) == 1
    assert calls(sandbox, project, "ITERABLE_SCHEDULE_CAMPAIGN") == []
    sent = [m for m in messages(project) if m.get("campaignId") == result.campaign_id]
    assert len(sent) == 3


def test_dry_run_creates_and_sends_nothing(
    sandbox: Any, project: Project, block_name: str, audience: int
) -> None:
    state = campaign_launch(
        campaign_name="Just looking",
        list_ids=[audience],
        template=spec("just-looking"),
        proof_recipients=REVIEWERS,
        preview_data={"firstName": "Grace"},
        send_at=in_days(1),
        dry_run=True,
        credentials_block=block_name,
        return_state=True,
    )
    result = state.result()
    assert result.dry_run and result.campaign_id is None and result.state == "NotCreated"
    assert result.decision == "not-asked" and result.proofs_sent == 0
    for action in SENDS:
        assert calls(sandbox, project, action) == [], action
    assert campaigns(project) == {} and proofs(project) == []
    (preview,) = [
        a
        for a in artifacts_of(state.state_details.flow_run_id)
        if a.key == "campaign-launch-preview"
    ]
    assert "Hello Grace" in preview.data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"send_at": in_days(8)}, "send_at: .* more than 7 days ahead"),
        ({"send_at": in_days(-1)}, "send_at: .* in the past"),
        ({"template_id": 5}, "exactly one of template_id"),
        ({"template": None}, "exactly one of template_id"),
        ({"list_ids": []}, "list_ids"),
    ],
)
def test_bad_parameters_fail_before_any_request(
    sandbox: Any,
    project: Project,
    block_name: str,
    audience: int,
    changes: dict[str, Any],
    message: str,
) -> None:
    params: dict[str, Any] = dict(
        campaign_name="Bad input",
        list_ids=[audience],
        template=spec("bad-input"),
        auto_approve=True,
        credentials_block=block_name,
    )
    with pytest.raises(ValueError, match=message):
        campaign_launch(**(params | changes))
    assert sandbox.state.requests(project_id=project.id) == []


def test_a_bad_proof_address_is_refused_before_any_request(
    sandbox: Any, project: Project, block_name: str, audience: int
) -> None:
    with pytest.raises(ParameterTypeError, match="proof_recipients.0: .*not an email"):
        campaign_launch(
            campaign_name="Bad address",
            list_ids=[audience],
            template=spec("bad-address"),
            proof_recipients=["reviewer-at-example.com"],
            credentials_block=block_name,
        )
    assert sandbox.state.requests(project_id=project.id) == []


def test_a_recipient_who_is_not_a_user_fails_the_launch_before_anything_is_created(
    sandbox: Any, project: Project, block_name: str, audience: int
) -> None:
    strangers = ["jane.stranger@example.com", "omar.unknown@example.org"]
    state = campaign_launch(
        campaign_name="Unknown reviewer",
        list_ids=[audience],
        template=spec("unknown-reviewer"),
        proof_recipients=[REVIEWERS[0], *strangers],
        send_at=in_days(1),
        auto_approve=True,
        credentials_block=block_name,
        return_state=True,
    )
    assert state.is_failed()
    message = str(state.message) + repr(state.result(raise_on_failure=False))
    # How many and which, masked: the error message is stored by Prefect.
    assert "2 of 3 are not users" in message
    assert "j***@example.com" in message and "o***@example.org" in message
    assert "stranger" not in message and "unknown@" not in message
    # Nothing was created, proofed or sent: no template, no campaign, no proof.
    for action in SENDS:
        assert calls(sandbox, project, action) == [], action
    assert named(project, "Unknown reviewer") == []
    assert not [
        t for t in templates(project).values() if t.get("clientTemplateId") == "unknown-reviewer"
    ]
    assert proofs(project) == []
