"""Campaign launch: template, campaign, proofs, preview, a human approval, then schedule or send.

The flow prepares an email blast campaign in Iterable, sends proofs to reviewers, publishes a
rendered preview as a Prefect artifact and pauses until someone approves or rejects it in the
Prefect UI (the run's "Resume" form). Only an approval schedules (``send_at``) or sends it.

Running it again with the same parameters is safe: it finds the campaign by name instead of
creating a second one, sends no proof twice to the same reviewer for that campaign, and leaves
alone a campaign that is already scheduled, running or finished. So is running it twice at once
(a double click, a retried automation): launches of the same campaign name in the same project
hold one Prefect global concurrency limit (created on first use, one slot) from the lookup to
the last proof and again while scheduling or sending, so the second run finds and adopts the
first run's campaign and proofs and does not send the blast again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.events import emit_event
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field, PositiveInt

from prefect_iterable.api.launch import Decision, EmailTemplateSpec, LaunchResult
from prefect_iterable.api.models.campaigns import Campaign
from prefect_iterable.api.types import Email
from prefect_iterable.flows import _launch
from prefect_iterable.tasks.campaigns import get_campaign

__all__ = [
    "ApprovalInput",
    "EmailTemplateSpec",
    "LaunchResult",
    "campaign_launch",
]

#: Seconds between checks of whether the paused run was resumed.
APPROVAL_POLL_SECONDS = 5


class ApprovalInput(RunInput):
    """Approve this campaign for sending, or reject it (it then stays unscheduled)."""

    approve: bool = Field(False, description="Tick to schedule or send the campaign.")
    comment: str = Field("", description="Why; recorded in the run's result and events.")


# ---- steps that emit events or pause: kept here, where tests and readers look for them


def _emit(event: str, campaign: Campaign, **payload: Any) -> None:
    resource = {
        "prefect.resource.id": f"iterable.campaign.{campaign.id}",
        "prefect.resource.name": campaign.name or "",
    }
    emit_event(event=event, resource=resource, payload=payload)


def _source(launch: _launch.Launch) -> int:
    if launch.source_template_id is None:
        raise RuntimeError("no source template after the template step")
    return launch.source_template_id


def _ask_approval(campaign: Campaign, auto_approve: bool, timeout: int) -> tuple[Decision, str]:
    """Pause for the Resume form's answer; no answer within ``timeout`` s is a time-out."""
    logger = get_run_logger()
    if auto_approve:
        logger.info("campaign %s auto-approved", campaign.id)
        return "approved", "auto-approved (demo mode)"
    logger.info(
        "campaign %s waits for approval (resume the run in the Prefect UI within %d s)",
        campaign.id,
        timeout,
    )
    try:
        answer = pause_flow_run(
            wait_for_input=ApprovalInput,
            timeout=timeout,
            poll_interval=APPROVAL_POLL_SECONDS,
            key=f"approve-campaign-{campaign.id}",
        )
    except FlowPauseTimeout:
        _launch.resume_after_timeout()
        return "timed-out", f"no decision within {timeout} s"
    return ("approved" if answer.approve else "rejected"), answer.comment


def _finish(
    launch: _launch.Launch, campaign: Campaign | None, message: str, **fields: Any
) -> LaunchResult:
    """The run's result, after logging its message (a warning unless it launched or dry-ran)."""
    done = fields.get("decision") == "approved" or launch.dry_run
    get_run_logger().log(logging.INFO if done else logging.WARNING, message)
    sent, skipped, unknown = launch.proofs
    return LaunchResult(
        campaign_name=launch.campaign_name,
        campaign_id=campaign.id if campaign else None,
        template_id=campaign.template_id
        if campaign is not None and not launch.dry_run
        else launch.source_template_id,
        source_template_id=launch.source_template_id,
        state=str(campaign.campaign_state) if campaign else "NotCreated",
        proofs_sent=sent,
        proofs_skipped=skipped,
        proofs_unknown=unknown,
        send_at=launch.send_at,
        dry_run=launch.dry_run,
        message=message,
        **fields,
    )


# ---- the flow --------------------------------------------------------------------------------


@flow(name="campaign-launch", log_prints=False)
def campaign_launch(
    campaign_name: str,
    list_ids: list[PositiveInt],
    template_id: PositiveInt | None = None,
    template: EmailTemplateSpec | None = None,
    proof_recipients: list[Email] | None = None,
    preview_data: dict[str, Any] | None = None,
    send_at: datetime | None = None,
    suppression_list_ids: list[PositiveInt] | None = None,
    approval_timeout_seconds: int = 3600,
    auto_approve: bool = False,
    dry_run: bool = False,
    credentials_block: str | None = None,
) -> LaunchResult:
    """Prepare an email blast campaign, send proofs, and schedule or send it once approved.

    Steps:
        1. Check the parameters (one of template_id and template, send_at at most 7 days
           ahead) and the credentials' permissions, before any request.
        2. Look for a campaign with this name (every page of ITERABLE_LIST_CAMPAIGNS, archived
           ones ignored). If it is already Scheduled, Running, Finished (or otherwise past Draft
           and Ready), stop there: nothing is changed, proofed, scheduled or sent.
           Then check that every proof recipient is a user of the project (a read per
           recipient); if one is not, fail naming how many and which (masked), with nothing
           created.
        3. Upsert the template by its client template id (ITERABLE_UPSERT_EMAIL_TEMPLATE) and
           read its id (ITERABLE_GET_TEMPLATE_BY_CLIENT_ID), or use template_id.
        4. Create the campaign unscheduled (ITERABLE_CREATE_CAMPAIGN, scheduleSend false) unless
           step 2 found it.
        5. Send one proof per recipient (ITERABLE_SEND_EMAIL_PROOF) of the campaign's template;
           a Prefect transaction per campaign and recipient makes sure no re-run sends it again.
           Its commit records live in Prefect's result storage (by default a local folder,
           `~/.prefect/storage`): workers on other machines need shared result storage
           (`PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK`) to see them. A proof whose outcome is
           unknown (timeout) counts as sent and is not repeated.
        6. Render the preview (ITERABLE_PREVIEW_EMAIL_TEMPLATE) into the markdown artifact
           `campaign-launch-preview`, with the campaign's settings.
        7. Pause for approval: the run's Resume form asks approve (yes or no) and a comment.
           auto_approve skips this (demo mode). No answer within approval_timeout_seconds counts
           as a rejection.
        8. On approval, schedule at send_at (ITERABLE_SCHEDULE_CAMPAIGN) or send now
           (ITERABLE_SEND_CAMPAIGN). On rejection or time-out, leave the campaign unscheduled.

    Events: iterable.campaign.created, .approved, .rejected, .scheduled and .sent, with the
    resource `iterable.campaign.<id>`.

    A dry run checks the parameters, looks up the campaign and renders the preview artifact (by
    Iterable for an existing template_id; locally, merge tags only, for a template to upsert), but
    upserts, creates, proofs, schedules and sends nothing.

    Args:
        campaign_name: The campaign's name; a re-run finds the campaign by it.
        list_ids: The lists to send to.
        template_id: An existing email template to create the campaign from.
        template: Or an email template to upsert by its client template id.
        proof_recipients: Email addresses that get a proof before approval.
        preview_data: dataFields used to render the proofs and the preview.
        send_at: When to send (at most 7 days ahead; a time without zone is UTC). Empty sends
            right after approval.
        suppression_list_ids: Lists whose members must not get the campaign (Iterable does not
            add the project's global suppression lists by itself).
        approval_timeout_seconds: How long to wait for an approval before leaving the campaign
            unscheduled.
        auto_approve: Approve without asking (demos and tests).
        dry_run: Check and render only; create, proof and send nothing.
        credentials_block: Name of a saved IterableCredentials block; empty uses the
            `ITERABLE_*` environment variables.

    Returns:
        A LaunchResult: campaign and template ids, the campaign's final state, proofs sent and
        skipped, the decision and its comment.
    """
    launch = _launch.prepare(
        campaign_name=campaign_name,
        list_ids=list(list_ids),
        template_id=template_id,
        template=template,
        proof_recipients=list(proof_recipients or []),
        preview_data=preview_data,
        send_at=send_at,
        suppression_list_ids=list(suppression_list_ids or []),
        approval_timeout_seconds=approval_timeout_seconds,
        dry_run=dry_run,
        credentials_block=credentials_block,
    )
    # One launch at a time from lookup to proofs: a second run (double click, retried
    # automation) waits, then finds and adopts the first run's campaign and its proofs.
    with _launch.launch_lock(launch):
        campaign = _launch.find_campaign(launch)
        if campaign is not None and str(campaign.campaign_state) not in _launch.LAUNCHABLE:
            message = (
                f"campaign {campaign.id} is already {campaign.campaign_state}; nothing was "
                "changed, proofed, scheduled or sent (use a new campaign_name to launch again)"
            )
            return _finish(launch, campaign, message, created=False, decision="not-asked")
        _launch.check_recipients(launch)
        _launch.resolve_template(launch)
        if dry_run:
            _launch.publish_preview(launch, campaign)
            would = f"would use campaign {campaign.id}" if campaign else "would create"
            message = (
                f"dry run: {would} and send {len(launch.recipients)} proof(s); nothing was "
                "created, proofed or sent"
            )
            return _finish(launch, campaign, message, created=False, decision="not-asked")
        created = campaign is None
        if campaign is None:
            campaign = _launch.create_unscheduled(launch, _source(launch))
            _emit(
                "iterable.campaign.created",
                campaign,
                template_id=launch.source_template_id,
                list_ids=launch.list_ids,
                state=str(campaign.campaign_state),
            )
        _launch.send_proofs(launch, campaign, campaign.template_id or _source(launch))

    _launch.publish_preview(launch, campaign)
    decision, comment = _ask_approval(campaign, auto_approve, approval_timeout_seconds)
    outcome = dict(created=created, decision=decision, comment=comment)
    if decision != "approved":
        _emit("iterable.campaign.rejected", campaign, decision=decision, comment=comment)
        campaign = get_campaign(campaign_id=campaign.id, credentials=launch.credentials)
        message = f"campaign {campaign.id} {decision}; left unscheduled"
        return _finish(launch, campaign, message, **outcome)
    _emit("iterable.campaign.approved", campaign, comment=comment, auto=auto_approve)

    with _launch.launch_lock(launch):
        campaign = get_campaign(campaign_id=campaign.id, credentials=launch.credentials)
        state = str(campaign.campaign_state)
        if state not in _launch.LAUNCHABLE:
            message = (
                f"campaign {campaign.id} became {state} while waiting; not scheduled or sent again"
            )
            return _finish(launch, campaign, message, **outcome)
        event = _launch.schedule_or_send(launch, campaign)
        if launch.send_at is not None:
            _emit(event, campaign, send_at=launch.send_at.isoformat())
            message = (
                f"campaign {campaign.id} approved and scheduled for {launch.send_at.isoformat()}"
            )
        else:
            _emit(event, campaign)
            message = f"campaign {campaign.id} approved and sent"
    campaign = get_campaign(campaign_id=campaign.id, credentials=launch.credentials)
    return _finish(launch, campaign, message, **outcome)
