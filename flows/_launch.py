"""The steps of ``campaign_launch``: each one small, each named after what it does in Iterable."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.states import Running
from prefect.transactions import transaction
from pydantic import BaseModel

from prefect_iterable.api.catalog import get_action
from prefect_iterable.api.errors import IterableError, NotFound, OutcomeUnknown
from prefect_iterable.api.launch import (
    EmailTemplateSpec,
    check_send_at,
    mask_email,
    missing_recipients,
    preview_markdown,
    render_locally,
)
from prefect_iterable.api.models.campaigns import Campaign
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

#: States in which the flow may still proof, ask for approval and schedule or send.
LAUNCHABLE = frozenset({"Draft", "Ready"})
#: How long a launch waits for another launch of the same campaign before it fails.
LAUNCH_LOCK_TIMEOUT = 900.0


@dataclass
class Launch:
    """The checked parameters of one launch, and what it found or made on the way."""

    campaign_name: str
    list_ids: list[int]
    template: EmailTemplateSpec | None
    recipients: list[str]
    preview_data: dict[str, Any] | None
    send_at: datetime | None
    suppression: list[int]
    dry_run: bool
    credentials: IterableCredentials
    source_template_id: int | None = None
    proofs: tuple[int, int, int] = field(default=(0, 0, 0))


def prepare(
    *,
    campaign_name: str,
    list_ids: list[int],
    template_id: int | None,
    template: EmailTemplateSpec | None,
    proof_recipients: list[str] | None,
    preview_data: dict[str, Any] | None,
    send_at: datetime | None,
    suppression_list_ids: list[int] | None,
    approval_timeout_seconds: int,
    dry_run: bool,
    credentials_block: str | None,
) -> Launch:
    """The parameters checked and the block's permissions for every step, before any request."""
    campaign_name = campaign_name.strip()
    if not campaign_name:
        raise ValueError("campaign_name: must not be empty")
    if not list_ids:
        raise ValueError("list_ids: a blast campaign needs at least one list")
    if (template_id is None) == (template is None):
        raise ValueError("give exactly one of template_id (existing) and template (to upsert)")
    if approval_timeout_seconds < 1:
        raise ValueError("approval_timeout_seconds: must be at least 1")
    launch = Launch(
        campaign_name=campaign_name,
        list_ids=list(list_ids),
        template=template,
        recipients=list(dict.fromkeys(r.strip().lower() for r in proof_recipients or [])),
        preview_data=preview_data,
        send_at=check_send_at(send_at),
        suppression=list(suppression_list_ids or []),
        dry_run=dry_run,
        credentials=IterableCredentials.load_or_env(credentials_block),
        source_template_id=template_id,
    )
    needed = ["ITERABLE_LIST_CAMPAIGNS", "ITERABLE_PREVIEW_EMAIL_TEMPLATE"]
    if launch.recipients:
        needed.append("ITERABLE_EXPORT_USER_EVENTS")  # the recipient check
    if template is not None:
        needed.append("ITERABLE_GET_TEMPLATE_BY_CLIENT_ID")
    if not dry_run:
        needed += ["ITERABLE_CREATE_CAMPAIGN", "ITERABLE_GET_CAMPAIGN"]
        needed.append("ITERABLE_SCHEDULE_CAMPAIGN" if launch.send_at else "ITERABLE_SEND_CAMPAIGN")
        if template is not None:
            needed.append("ITERABLE_UPSERT_EMAIL_TEMPLATE")
        if launch.recipients:
            needed.append("ITERABLE_SEND_EMAIL_PROOF")
    for action_id in needed:
        # The campaign is created unscheduled; scheduling or sending is checked on its own.
        launch.credentials.check_permission(get_action(action_id), {"schedule_send": False})
    return launch


def _digest(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:16]


def _scope(credentials: IterableCredentials) -> str:
    return credentials.project_id or credentials.cache_key()[0][:16]


@contextlib.contextmanager
def launch_lock(launch: Launch) -> Iterator[None]:
    """Hold the Prefect global concurrency limit (one slot) of this campaign in this project.

    Its name derives from the project and the campaign name, so launches of other campaigns
    never wait. A limit that does not exist does not block in Prefect, so it is created first
    (``limit=1``); the server serialises every worker and process on it. A dry run holds none.
    """
    if launch.dry_run:
        yield
        return
    key = _digest(f"{_scope(launch.credentials)}/{launch.campaign_name}")
    name = f"iterable-campaign-launch-{key}"
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


def find_campaign(launch: Launch) -> Campaign | None:
    """The newest campaign with exactly this name that is not archived."""
    found = [
        c
        for c in walk_campaigns(launch.credentials)
        if c.name == launch.campaign_name and str(c.campaign_state) != "Archived"
    ]
    if len(found) > 1:
        get_run_logger().warning(
            "%d campaigns are named %r (ids %s); using the newest",
            len(found),
            launch.campaign_name,
            ", ".join(str(c.id) for c in found),
        )
    campaign = max(found, key=lambda c: c.id) if found else None
    if campaign is not None and sorted(campaign.list_ids) != sorted(launch.list_ids):
        get_run_logger().warning(
            "campaign %s sends to lists %s, not the requested %s; keeping its lists",
            campaign.id,
            campaign.list_ids,
            launch.list_ids,
        )
    return campaign


def check_recipients(launch: Launch) -> None:
    """Refuse the launch, before anything is created, if a proof recipient is not a user."""
    missing = missing_recipients(launch.credentials.get_client(), launch.recipients)
    if missing:
        # Masked: an error message ends up in Prefect's state, which is kept.
        raise ValueError(
            f"proof_recipients: {len(missing)} of {len(launch.recipients)} are not users of "
            f"this Iterable project ({', '.join(map(mask_email, missing))}); Iterable sends "
            "proofs only to existing users. Nothing was created."
        )


def _base_template_id(launch: Launch, client_template_id: str) -> int | None:
    """The id of the template (not a campaign's copy) carrying this client template id."""
    try:
        answer = get_template_by_client_id(
            client_template_id=client_template_id, credentials=launch.credentials
        )
    except NotFound:
        return None
    # As plain JSON with Iterable's field names, whatever the response model made of it.
    wire: Any = (
        answer.model_dump(mode="json", by_alias=True) if isinstance(answer, BaseModel) else answer
    )
    entries: list[dict[str, Any]] = wire.get("templates", []) if isinstance(wire, dict) else []
    own = [e for e in entries if not e.get("campaignId")] or entries
    ids = [int(e["templateId"]) for e in own if e.get("templateId") is not None]
    return max(ids) if ids else None


def resolve_template(launch: Launch) -> None:
    """Upsert the template spec (not in a dry run) and read its id into the launch."""
    spec = launch.template
    if spec is None:
        return
    if not launch.dry_run:
        upsert_email_template(**spec.model_dump(exclude_none=True), credentials=launch.credentials)
    launch.source_template_id = _base_template_id(launch, spec.client_template_id)
    if launch.dry_run:
        return
    if launch.source_template_id is None:
        raise RuntimeError(
            f"template {spec.client_template_id!r} was upserted but "
            "ITERABLE_GET_TEMPLATE_BY_CLIENT_ID does not return it"
        )
    get_run_logger().info(
        "template %s upserted (id %s)", spec.client_template_id, launch.source_template_id
    )


def create_unscheduled(launch: Launch, template_id: int) -> Campaign:
    """Create the campaign unscheduled; after an unknown outcome, adopt it if it exists."""
    try:
        campaign_id = create_campaign(
            name=launch.campaign_name,
            template_id=template_id,
            list_ids=launch.list_ids,
            suppression_list_ids=launch.suppression or None,
            schedule_send=False,
            credentials=launch.credentials,
        ).campaign_id
    except OutcomeUnknown:
        found = find_campaign(launch)
        if found is None:
            raise
        campaign_id = found.id
        get_run_logger().warning(
            "campaign create had an unknown outcome; it was created as %s", campaign_id
        )
    campaign = get_campaign(campaign_id=campaign_id, credentials=launch.credentials)
    get_run_logger().info(
        "campaign %s created unscheduled from template %s", campaign.id, template_id
    )
    return campaign


def send_proofs(launch: Launch, campaign: Campaign, template_id: int) -> None:
    """One proof per recipient for this campaign, ever: a committed transaction per pair.

    Counts into ``launch.proofs`` the proofs sent, skipped (sent by an earlier run) and of
    unknown outcome (counted as sent, never repeated).
    """
    logger = get_run_logger()
    sent = skipped = unknown = 0
    for recipient in launch.recipients:
        who = _digest(recipient)
        key = (
            f"iterable-proof-{_scope(launch.credentials)}-{campaign.id}-{campaign.created_at}-{who}"
        )
        with transaction(key=key) as txn:
            if txn.is_committed():
                skipped += 1
                logger.info("proof to recipient %s already sent for campaign %s", who, campaign.id)
                continue
            try:
                send_email_proof(
                    template_id=template_id,
                    recipient_email=recipient,
                    data_fields=launch.preview_data or None,
                    credentials=launch.credentials,
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
    launch.proofs = (sent, skipped, unknown)
    logger.info(
        "campaign %s: %d proof(s) sent, %d already sent earlier, %d of unknown outcome",
        campaign.id,
        *launch.proofs,
    )


def publish_preview(launch: Launch, campaign: Campaign | None) -> None:
    """The rendered campaign and its settings as the markdown artifact ``campaign-launch-preview``.

    Iterable renders it from the campaign's own template copy (what would be sent), else from
    the source template; a dry run with a template not upserted renders merge tags locally.
    """
    if launch.dry_run and launch.template is not None:
        rendered = render_locally(launch.template.html, launch.preview_data or {})
        rendered_by = (
            "Rendered locally (dry run, template not upserted): {{field}} merge tags only; "
            "Iterable's Handlebars rendering may differ."
        )
    else:
        preview_id = (campaign.template_id if campaign else None) or launch.source_template_id
        if preview_id is None:
            raise RuntimeError("no template to preview")
        rendered = str(
            preview_email_template(
                template_id=preview_id,
                data_fields=launch.preview_data or None,
                credentials=launch.credentials,
            )
        )
        rendered_by = f"Rendered by Iterable from template {preview_id}."
    # What the campaign really has (Iterable copies the template; it keeps the lists it has).
    own = campaign if not launch.dry_run else None
    template_id = (own.template_id if own else None) or launch.source_template_id
    lists = (own.list_ids if own else None) or launch.list_ids
    suppression = (own.suppression_list_ids if own else None) or launch.suppression
    rows = [
        ("Campaign", launch.campaign_name),
        ("Campaign id", str(campaign.id) if campaign else "(not created: dry run)"),
        ("State", str(campaign.campaign_state) if campaign else "NotCreated"),
        ("Template id", str(template_id) if template_id else "(not upserted: dry run)"),
        ("Lists", ", ".join(map(str, lists))),
        ("Suppression lists", ", ".join(map(str, suppression)) or "none"),
        ("Send", launch.send_at.isoformat() if launch.send_at else "immediately after approval"),
        ("Proof recipients", str(len(launch.recipients))),
    ]
    if launch.template is not None:
        rows[4:4] = [
            ("Subject", launch.template.subject),
            ("From", f"{launch.template.from_name} <{launch.template.from_email}>"),
        ]
    create_markdown_artifact(
        markdown=preview_markdown(rows, rendered, rendered_by, dry_run=launch.dry_run),
        key="campaign-launch-preview",
        description=f"Dry run of campaign {launch.campaign_name!r}"
        if own is None
        else f"Preview of campaign {own.id} ({launch.campaign_name!r}) for approval",
    )


def resume_after_timeout() -> None:
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


def schedule_or_send(launch: Launch, campaign: Campaign) -> str:
    """Schedule at ``send_at`` or send now; returns the event to emit.

    Call it holding ``launch_lock``: a second run waiting there then sees it sent or scheduled.
    """
    if launch.send_at is not None:
        if launch.send_at <= datetime.now(timezone.utc):
            raise ValueError(
                f"send_at: {launch.send_at.isoformat()} passed while waiting for approval; "
                f"campaign {campaign.id} is left unscheduled: re-run with a later send_at"
            )
        try:
            schedule_campaign(
                campaign_id=campaign.id, send_at=launch.send_at, credentials=launch.credentials
            )
        except IterableError as exc:
            # A lost answer (5xx, reset, late answer) makes the client schedule again, and
            # Iterable refuses the repeat because the first one worked: look before failing.
            after = get_campaign(campaign_id=campaign.id, credentials=launch.credentials)
            if str(after.campaign_state) != "Scheduled":
                raise
            get_run_logger().warning(
                "campaign %s: scheduling answered %s, but the campaign is Scheduled",
                campaign.id,
                type(exc).__name__,
            )
        return "iterable.campaign.scheduled"
    try:
        send_campaign(campaign_id=campaign.id, credentials=launch.credentials)
    except OutcomeUnknown:
        after = get_campaign(campaign_id=campaign.id, credentials=launch.credentials)
        if str(after.campaign_state) in LAUNCHABLE:
            raise
    return "iterable.campaign.sent"
