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

import contextlib
import hashlib
import html as html_lib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.exceptions import FlowPauseTimeout, ObjectAlreadyExists, ObjectNotFound
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Running
from prefect.transactions import transaction
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from prefect_iterable.api.catalog import get_action
from prefect_iterable.api.errors import IterableError, NotFound, OutcomeUnknown
from prefect_iterable.api.models.campaigns import Campaign
from prefect_iterable.api.types import Email
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.flows.emergency_stop import walk_campaigns
from prefect_iterable.tasks.campaigns import (
    create_campaign,
    get_campaign,
    schedule_campaign,
    send_campaign,
)
from prefect_iterable.tasks.templates import (
    get_template_by_client_id,
    preview_email_template,
    send_email_proof,
    upsert_email_template,
)

__all__ = [
    "ApprovalInput",
    "EmailTemplateSpec",
    "LaunchResult",
    "campaign_launch",
]

#: Iterable schedules an existing campaign at most this far ahead (``campaigns/{id}/schedule``).
MAX_SCHEDULE_AHEAD = timedelta(days=7)
#: Seconds between checks of whether the paused run was resumed.
APPROVAL_POLL_SECONDS = 5
#: States in which the flow may still proof, ask for approval and schedule or send.
LAUNCHABLE = frozenset({"Draft", "Ready"})
#: Characters of rendered HTML kept in the preview artifact.
PREVIEW_HTML_LIMIT = 20_000
#: How long a launch waits for another launch of the same campaign before it fails.
LAUNCH_LOCK_TIMEOUT = 900.0

Decision = Literal["approved", "rejected", "timed-out", "not-asked"]


class EmailTemplateSpec(BaseModel):
    """An email template to create or update (upsert) by its client template id."""

    model_config = ConfigDict(extra="forbid")

    client_template_id: str = Field(
        min_length=1,
        max_length=255,
        description="Your stable id for this template; every upsert with it updates the same "
        "template.",
    )
    name: str = Field(min_length=1, description="The template's name in Iterable.")
    subject: str = Field(min_length=1, description="The email subject line.")
    html: str = Field(min_length=1, description="The email body as HTML (Handlebars allowed).")
    from_name: str = Field(min_length=1, description="The sender's display name.")
    from_email: Email = Field(description="The sender address; its domain must be verified.")
    reply_to_email: Email | None = Field(None, description="Where replies go.")
    plain_text: str | None = Field(None, description="The plain-text alternative body.")
    preheader_text: str | None = Field(None, description="The inbox preview line.")
    message_type_id: PositiveInt | None = Field(
        None, description="The message type (subscription category) of the campaign."
    )
    locale: str | None = Field(None, description="The locale of this content (default locale).")


class ApprovalInput(RunInput):
    """Approve this campaign for sending, or reject it (it then stays unscheduled)."""

    approve: bool = Field(False, description="Tick to schedule or send the campaign.")
    comment: str = Field("", description="Why; recorded in the run's result and events.")


class LaunchResult(BaseModel):
    """What the launch did; ids, counts and the decision, never the content or recipients."""

    campaign_name: str
    campaign_id: int | None = Field(description="None in a dry run that would create it.")
    template_id: int | None = Field(
        description="The campaign's own template (Iterable copies the source template into the "
        "campaign); in a dry run, the source template."
    )
    source_template_id: int | None = Field(
        None, description="The template given or upserted, that the campaign was created from."
    )
    state: str = Field(description="The campaign's state at the end, or NotCreated.")
    created: bool = Field(description="Whether this run created the campaign.")
    proofs_sent: int = 0
    proofs_skipped: int = Field(0, description="Proofs already sent by an earlier run.")
    proofs_unknown: int = Field(
        0, description="Proofs whose request failed after it may have been received; not repeated."
    )
    decision: Decision
    comment: str = ""
    send_at: datetime | None = None
    dry_run: bool = False
    message: str = ""


# ---- helpers --------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


def _check_send_at(send_at: datetime | None) -> datetime | None:
    if send_at is None:
        return None
    value = _utc(send_at)
    now = datetime.now(timezone.utc)
    if value <= now:
        raise ValueError(f"send_at: {value.isoformat()} is in the past; give a future time or none")
    if value > now + MAX_SCHEDULE_AHEAD:
        raise ValueError(
            f"send_at: {value.isoformat()} is more than 7 days ahead; Iterable schedules an "
            "existing campaign at most 7 days ahead"
        )
    return value


def _digest(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:16]


def _find_campaign(credentials: IterableCredentials, name: str) -> Campaign | None:
    """The newest campaign with exactly this name that is not archived."""
    found = [
        c
        for c in walk_campaigns(credentials)
        if c.name == name and str(c.campaign_state) != "Archived"
    ]
    if len(found) > 1:
        get_run_logger().warning(
            "%d campaigns are named %r (ids %s); using the newest",
            len(found),
            name,
            ", ".join(str(c.id) for c in found),
        )
    return max(found, key=lambda c: c.id) if found else None


@contextlib.contextmanager
def _launch_lock(credentials: IterableCredentials, campaign_name: str) -> Iterator[None]:
    """Hold the Prefect global concurrency limit (one slot) of this campaign in this project.

    Its name derives from the project and the campaign name, so launches of other campaigns
    never wait. A limit that does not exist does not block in Prefect, so it is created first
    (``limit=1``); the server serialises every worker and process on it.
    """
    scope = credentials.project_id or credentials.cache_key()[0][:16]
    name = f"iterable-campaign-launch-{_digest(f'{scope}/{campaign_name}')}"
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
    with concurrency(name, occupy=1, timeout_seconds=LAUNCH_LOCK_TIMEOUT, strict=True):
        yield


def _wire(value: Any) -> Any:
    """A response as plain JSON with Iterable's field names, whatever its model."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return value


def _base_template_id(credentials: IterableCredentials, client_template_id: str) -> int | None:
    """The id of the template (not a campaign's copy) carrying this client template id."""
    try:
        answer = _wire(
            get_template_by_client_id(
                client_template_id=client_template_id, credentials=credentials
            )
        )
    except NotFound:
        return None
    entries = answer.get("templates", []) if isinstance(answer, dict) else []
    own = [e for e in entries if not e.get("campaignId")] or entries
    ids = [int(e["templateId"]) for e in own if e.get("templateId") is not None]
    return max(ids) if ids else None


def _render_locally(text: str, data: dict[str, Any]) -> str:
    """``{{field}}`` merge tags filled from ``data`` (a dry run cannot ask Iterable to render)."""

    def fill(match: re.Match[str]) -> str:
        value: Any = data
        for part in match.group(1).split("."):
            if not isinstance(value, dict) or part not in value:
                return match.group(0)
            value = value[part]
        return html_lib.escape(str(value))

    return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", fill, text)


def _text_of(rendered: str) -> str:
    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", rendered)
    body = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</h\d>|</li>|</tr>", "\n", body)
    body = html_lib.unescape(re.sub(r"<[^>]+>", " ", body))
    lines = (re.sub(r"[ \t]+", " ", line).strip() for line in body.splitlines())
    return "\n".join(line for line in lines if line)


def _preview_markdown(
    *,
    campaign_name: str,
    campaign: Campaign | None,
    template_id: int | None,
    spec: EmailTemplateSpec | None,
    list_ids: list[int],
    suppression_list_ids: list[int],
    send_at: datetime | None,
    proof_count: int,
    rendered: str,
    rendered_by: str,
    dry_run: bool,
) -> str:
    rows = [
        ("Campaign", campaign_name),
        ("Campaign id", str(campaign.id) if campaign else "(not created: dry run)"),
        ("State", str(campaign.campaign_state) if campaign else "NotCreated"),
        ("Template id", str(template_id) if template_id else "(not upserted: dry run)"),
        ("Lists", ", ".join(map(str, list_ids))),
        ("Suppression lists", ", ".join(map(str, suppression_list_ids)) or "none"),
        ("Send", send_at.isoformat() if send_at else "immediately after approval"),
        ("Proof recipients", str(proof_count)),
    ]
    if spec is not None:
        rows[4:4] = [
            ("Subject", spec.subject),
            ("From", f"{spec.from_name} <{spec.from_email}>"),
        ]
    table = "\n".join(f"| {k} | {v.replace('|', chr(92) + '|')} |" for k, v in rows)
    shown = rendered[:PREVIEW_HTML_LIMIT]
    cut = "" if len(rendered) <= PREVIEW_HTML_LIMIT else "\n<!-- … cut -->"
    title = "Dry run: campaign preview" if dry_run else "Campaign preview: awaiting approval"
    return (
        f"# {title}\n\n| Setting | Value |\n|---|---|\n{table}\n\n"
        f"## Rendered text\n\n_{rendered_by}_\n\n```text\n{_text_of(rendered)[:5000]}\n```\n\n"
        f"## Rendered HTML\n\n```html\n{shown}{cut}\n```\n"
    )


def _emit(event: str, campaign: Campaign | int, **payload: Any) -> None:
    campaign_id = campaign if isinstance(campaign, int) else campaign.id
    resource = {"prefect.resource.id": f"iterable.campaign.{campaign_id}"}
    if isinstance(campaign, Campaign):
        resource["prefect.resource.name"] = campaign.name or ""
    emit_event(event=event, resource=resource, payload=payload)


def _resume_after_timeout() -> None:
    """Put a run whose approval pause expired back into Running, so it can finish Completed.

    Prefect refuses to leave an expired pause except to Failed; the campaign was left
    unscheduled on purpose, which is an outcome, not a failure.
    """
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            context.flow_run.id, Running(message="Approval timed out"), force=True
        )


def _send_proofs(
    credentials: IterableCredentials,
    campaign: Campaign,
    template_id: int,
    recipients: list[str],
    data_fields: dict[str, Any] | None,
) -> tuple[int, int, int]:
    """One proof per recipient for this campaign, ever: a committed transaction per pair.

    Returns the proofs sent, skipped (sent by an earlier run) and of unknown outcome.
    """
    logger = get_run_logger()
    scope = credentials.project_id or credentials.cache_key()[0][:16]
    sent = skipped = unknown = 0
    for recipient in recipients:
        who = _digest(recipient)
        key = f"iterable-proof-{scope}-{campaign.id}-{campaign.created_at}-{who}"
        with transaction(key=key) as txn:
            if txn.is_committed():
                skipped += 1
                logger.info("proof to recipient %s already sent for campaign %s", who, campaign.id)
                continue
            try:
                send_email_proof(
                    template_id=template_id,
                    recipient_email=recipient,
                    data_fields=data_fields or None,
                    credentials=credentials,
                )
            except OutcomeUnknown:
                # It may have gone out: record it as sent rather than risk a second proof.
                logger.warning(
                    "proof to recipient %s for campaign %s: outcome unknown; not sent again",
                    who,
                    campaign.id,
                )
                unknown += 1
                txn.stage({"outcome": "unknown"})
            else:
                sent += 1
                txn.stage({"outcome": "sent"})
    return sent, skipped, unknown


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
    logger = get_run_logger()
    # ---- 1. parameters and permissions, before any request
    campaign_name = campaign_name.strip()
    if not campaign_name:
        raise ValueError("campaign_name: must not be empty")
    if not list_ids:
        raise ValueError("list_ids: a blast campaign needs at least one list")
    if (template_id is None) == (template is None):
        raise ValueError("give exactly one of template_id (existing) and template (to upsert)")
    if approval_timeout_seconds < 1:
        raise ValueError("approval_timeout_seconds: must be at least 1")
    send_at = _check_send_at(send_at)
    recipients = list(dict.fromkeys(r.strip().lower() for r in proof_recipients or []))
    suppression = list(suppression_list_ids or [])
    credentials = IterableCredentials.load_or_env(credentials_block)
    needed = ["ITERABLE_LIST_CAMPAIGNS", "ITERABLE_PREVIEW_EMAIL_TEMPLATE"]
    if template is not None:
        needed.append("ITERABLE_GET_TEMPLATE_BY_CLIENT_ID")
    if not dry_run:
        needed += ["ITERABLE_CREATE_CAMPAIGN", "ITERABLE_GET_CAMPAIGN"]
        needed.append("ITERABLE_SCHEDULE_CAMPAIGN" if send_at else "ITERABLE_SEND_CAMPAIGN")
        if template is not None:
            needed.append("ITERABLE_UPSERT_EMAIL_TEMPLATE")
        if recipients:
            needed.append("ITERABLE_SEND_EMAIL_PROOF")
    for action_id in needed:
        # The campaign is created unscheduled; scheduling or sending is checked on its own.
        credentials.check_permission(get_action(action_id), {"schedule_send": False})

    source_template_id: int | None = template_id

    def result(campaign: Campaign | None, **fields: Any) -> LaunchResult:
        return LaunchResult(
            campaign_name=campaign_name,
            campaign_id=campaign.id if campaign else None,
            template_id=fields.pop("template_id", campaign.template_id if campaign else None),
            source_template_id=fields.pop("source_template_id", source_template_id),
            state=str(campaign.campaign_state) if campaign else "NotCreated",
            send_at=send_at,
            dry_run=dry_run,
            **fields,
        )

    # ---- one launch at a time from lookup to proofs: a second run (double click, retried
    # automation) waits, then finds and adopts the first run's campaign and its proofs.
    held = contextlib.ExitStack()
    if not dry_run:
        held.enter_context(_launch_lock(credentials, campaign_name))
    with held:
        # ---- 2. an existing campaign with this name?
        campaign = _find_campaign(credentials, campaign_name)
        if campaign is not None:
            state = str(campaign.campaign_state)
            logger.info("found campaign %s named %r in state %s", campaign.id, campaign_name, state)
            if sorted(campaign.list_ids) != sorted(list_ids):
                logger.warning(
                    "campaign %s sends to lists %s, not the requested %s; keeping its lists",
                    campaign.id,
                    campaign.list_ids,
                    list_ids,
                )
            if state not in LAUNCHABLE:
                message = (
                    f"campaign {campaign.id} is already {state}; nothing was changed, proofed, "
                    "scheduled or sent (use a new campaign_name to launch again)"
                )
                logger.warning(message)
                return result(campaign, created=False, decision="not-asked", message=message)

        # ---- 3. the template
        if template is not None:
            if dry_run:
                source_template_id = _base_template_id(credentials, template.client_template_id)
            else:
                upsert_email_template(
                    **template.model_dump(exclude_none=True), credentials=credentials
                )
                source_template_id = _base_template_id(credentials, template.client_template_id)
                if source_template_id is None:
                    raise RuntimeError(
                        f"template {template.client_template_id!r} was upserted but "
                        "ITERABLE_GET_TEMPLATE_BY_CLIENT_ID does not return it"
                    )
                logger.info(
                    "template %s upserted (id %s)", template.client_template_id, source_template_id
                )

        # ---- dry run: render and stop
        if dry_run:
            if template is None:
                # The campaign's own copy if it exists (that is what would be sent), else the template.
                preview_id = (campaign.template_id if campaign else None) or source_template_id
                assert preview_id is not None
                rendered = str(
                    preview_email_template(
                        template_id=preview_id,
                        data_fields=preview_data or None,
                        credentials=credentials,
                    )
                )
                rendered_by = f"Rendered by Iterable from template {preview_id}."
            else:
                rendered = _render_locally(template.html, preview_data or {})
                rendered_by = (
                    "Rendered locally (dry run, template not upserted): {{field}} merge tags only; "
                    "Iterable's Handlebars rendering may differ."
                )
            create_markdown_artifact(
                markdown=_preview_markdown(
                    campaign_name=campaign_name,
                    campaign=campaign,
                    template_id=source_template_id,
                    spec=template,
                    list_ids=list(list_ids),
                    suppression_list_ids=suppression,
                    send_at=send_at,
                    proof_count=len(recipients),
                    rendered=rendered,
                    rendered_by=rendered_by,
                    dry_run=True,
                ),
                key="campaign-launch-preview",
                description=f"Dry run of campaign {campaign_name!r}",
            )
            message = (
                f"dry run: would use campaign {campaign.id}"
                if campaign
                else "dry run: would create"
            ) + f" and send {len(recipients)} proof(s); nothing was created, proofed or sent"
            logger.info(message)
            return result(
                campaign,
                template_id=source_template_id,
                created=False,
                decision="not-asked",
                message=message,
            )

        assert source_template_id is not None
        # ---- 4. create the campaign, unscheduled
        created = False
        if campaign is None:
            try:
                answer = create_campaign(
                    name=campaign_name,
                    template_id=source_template_id,
                    list_ids=list(list_ids),
                    suppression_list_ids=suppression or None,
                    schedule_send=False,
                    credentials=credentials,
                )
                campaign_id = answer.campaign_id
            except OutcomeUnknown:
                found = _find_campaign(credentials, campaign_name)
                if found is None:
                    raise
                campaign_id = found.id
                logger.warning(
                    "campaign create had an unknown outcome; it was created as %s", campaign_id
                )
            created = True
            campaign = get_campaign(campaign_id=campaign_id, credentials=credentials)
            logger.info(
                "campaign %s created unscheduled from template %s", campaign.id, source_template_id
            )
            _emit(
                "iterable.campaign.created",
                campaign,
                template_id=source_template_id,
                list_ids=list(list_ids),
                state=str(campaign.campaign_state),
            )
        proof_template = campaign.template_id or source_template_id

        # ---- 5. proofs, at most once per campaign and recipient
        proofs_sent, proofs_skipped, proofs_unknown = _send_proofs(
            credentials, campaign, proof_template, recipients, preview_data
        )
        logger.info(
            "campaign %s: %d proof(s) sent, %d already sent earlier, %d of unknown outcome",
            campaign.id,
            proofs_sent,
            proofs_skipped,
            proofs_unknown,
        )

    # ---- 6. the preview artifact
    rendered = str(
        preview_email_template(
            template_id=proof_template, data_fields=preview_data or None, credentials=credentials
        )
    )
    create_markdown_artifact(
        markdown=_preview_markdown(
            campaign_name=campaign_name,
            campaign=campaign,
            template_id=campaign.template_id or source_template_id,
            spec=template,
            list_ids=list(campaign.list_ids or list_ids),
            suppression_list_ids=list(campaign.suppression_list_ids or suppression),
            send_at=send_at,
            proof_count=len(recipients),
            rendered=rendered,
            rendered_by=f"Rendered by Iterable from template {proof_template}.",
            dry_run=False,
        ),
        key="campaign-launch-preview",
        description=f"Preview of campaign {campaign.id} ({campaign_name!r}) for approval",
    )

    # ---- 7. approval
    decision: Decision
    comment = ""
    if auto_approve:
        decision, comment = "approved", "auto-approved (demo mode)"
        logger.info("campaign %s auto-approved", campaign.id)
    else:
        logger.info(
            "campaign %s waits for approval (resume the run in the Prefect UI within %d s)",
            campaign.id,
            approval_timeout_seconds,
        )
        try:
            answer_input = pause_flow_run(
                wait_for_input=ApprovalInput,
                timeout=approval_timeout_seconds,
                poll_interval=APPROVAL_POLL_SECONDS,
                key=f"approve-campaign-{campaign.id}",
            )
        except FlowPauseTimeout:
            _resume_after_timeout()
            decision = "timed-out"
            comment = f"no decision within {approval_timeout_seconds} s"
        else:
            decision = "approved" if answer_input.approve else "rejected"
            comment = answer_input.comment

    def decided(campaign: Campaign, message: str) -> LaunchResult:
        """The result of a run that got as far as a decision."""
        return result(
            campaign,
            created=created,
            proofs_sent=proofs_sent,
            proofs_skipped=proofs_skipped,
            proofs_unknown=proofs_unknown,
            decision=decision,
            comment=comment,
            message=message,
        )

    if decision != "approved":
        _emit("iterable.campaign.rejected", campaign, decision=decision, comment=comment)
        message = f"campaign {campaign.id} {decision}; left unscheduled"
        logger.warning("%s (%s)", message, comment or "no comment")
        campaign = get_campaign(campaign_id=campaign.id, credentials=credentials)
        return decided(campaign, message)
    _emit("iterable.campaign.approved", campaign, comment=comment, auto=auto_approve)

    # ---- 8. schedule or send
    # One launch of this campaign at a time: a second run waiting here sees it sent or scheduled.
    with _launch_lock(credentials, campaign_name):
        campaign = get_campaign(campaign_id=campaign.id, credentials=credentials)
        state = str(campaign.campaign_state)
        if state not in LAUNCHABLE:
            message = (
                f"campaign {campaign.id} became {state} while waiting; not scheduled or sent again"
            )
            logger.warning(message)
            return decided(campaign, message)
        if send_at is not None:
            if send_at <= datetime.now(timezone.utc):
                raise ValueError(
                    f"send_at: {send_at.isoformat()} passed while waiting for approval; campaign "
                    f"{campaign.id} is left unscheduled: re-run with a later send_at"
                )
            try:
                schedule_campaign(campaign_id=campaign.id, send_at=send_at, credentials=credentials)
            except IterableError as exc:
                # A lost answer (5xx, reset, late answer) makes the client schedule again, and
                # Iterable refuses the repeat because the first one worked: look before failing.
                after = get_campaign(campaign_id=campaign.id, credentials=credentials)
                if str(after.campaign_state) != "Scheduled":
                    raise
                logger.warning(
                    "campaign %s: scheduling answered %s, but the campaign is Scheduled",
                    campaign.id,
                    type(exc).__name__,
                )
            _emit("iterable.campaign.scheduled", campaign, send_at=send_at.isoformat())
            message = f"campaign {campaign.id} approved and scheduled for {send_at.isoformat()}"
        else:
            try:
                send_campaign(campaign_id=campaign.id, credentials=credentials)
            except OutcomeUnknown:
                after = get_campaign(campaign_id=campaign.id, credentials=credentials)
                if str(after.campaign_state) in LAUNCHABLE:
                    raise
            _emit("iterable.campaign.sent", campaign)
            message = f"campaign {campaign.id} approved and sent"
        logger.info(message)
    campaign = get_campaign(campaign_id=campaign.id, credentials=credentials)
    return decided(campaign, message)
