"""Campaigns and experiment metrics: a campaign's life from template copy to archive.

State, per project:

- ``campaigns(project)``: ``{campaign_id: CampaignDetails wire JSON}``; other areas read
  ``campaignState``, ``templateId``, ``messageMedium``, ``type`` and ``listIds`` from it.
- ``_settings(project)``: what create and schedule were told that ``CampaignDetails`` does not
  show (send mode, time zones, campaign data fields).
- ``experiments(project)``: ``{experiment_id: {"id", "campaignId", "name", "variants":
  [{"templateId", "name", "isControl"}]}}``. No API creates experiments, so tests and demos put
  them here; metrics are counted from the message log by campaign and variant template.

A blast goes Ready → Scheduled → (Running) → Finished; the sandbox sends a due scheduled blast
the next time any campaign action runs, as Iterable's scheduler would have by then. A triggered
campaign is Ready (inactive) or Running (active) until aborted or archived.
"""

from __future__ import annotations

import copy
import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect_iterable.sandbox.handlers import _shared
from prefect_iterable.sandbox.handlers._base import (
    ApiFailure,
    Call,
    Reply,
    bad_params,
    forbidden,
    handles,
    not_found,
    paginate,
    success,
)
from prefect_iterable.sandbox.handlers._shared import (
    lists,
    messages,
    now_ms,
    record_message,
    require_list,
    require_template,
    templates,
    users,
)
from prefect_iterable.sandbox.state import Project

__all__ = ["CAMPAIGN_STATES", "campaigns", "experiments"]

CAMPAIGN_STATES = (
    "Draft",
    "Ready",
    "Scheduled",
    "Running",
    "Finished",
    "Starting",
    "Aborted",
    "Recurring",
    "Archived",
)
SORT_FIELDS = ("id", "name", "createdAt", "updatedAt", "startAt")
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 1000
CREATE_WINDOW, SCHEDULE_WINDOW = timedelta(days=21), timedelta(days=7)
# The client checks windows against its own clock; allow for skew and time in transit.
_WINDOW_SLACK = timedelta(minutes=5)
CREATOR = "api@sandbox.iterable.local"

# Labels must already exist in Iterable; no API creates them, so every project starts with these.
DEFAULT_LABELS = {1: "Newsletter", 2: "Promotion", 3: "Onboarding", 4: "Retention"}

_MEDIUM_COLUMNS = {"Email": "Email", "Push": "Push", "SMS": "SMS", "InApp": "In-App"}


def campaigns(project: Project) -> dict[int, dict[str, Any]]:
    return project.area("campaigns", dict)


def experiments(project: Project) -> dict[int, dict[str, Any]]:
    return project.area("experiments", dict)


def _settings(project: Project) -> dict[int, dict[str, Any]]:
    return project.area("campaign_settings", dict)


def _labels(project: Project) -> dict[int, str]:
    return project.area("campaign_labels", lambda: dict(DEFAULT_LABELS))


# ---- argument helpers ------------------------------------------------------------------------


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise bad_params(f"{name} must be an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise bad_params(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, float) and value != number:
        raise bad_params(f"{name} must be an integer, got {value!r}")
    return number


def _int_list(value: Any, name: str) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_params(f"{name} must be an array of integers")
    return [_int(v, name) for v in value]


def _object(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_params(f"{name} must be a JSON object")
    return value


def _zone(value: Any, name: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_params(f"{name} is not an IANA time zone: {value!r}") from None
    return str(value)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _find(project: Project, campaign_id: Any, *, status: int = 400) -> dict[str, Any]:
    number = _int(campaign_id, "campaignId")
    found = campaigns(project).get(number)
    if found is None:
        if status == 404:
            raise not_found(f"Campaign {number} not found")
        raise bad_params(f"Campaign {number} does not exist", campaignId=number)
    return found


def _wrong_state(campaign: dict[str, Any], action: str, allowed: str) -> ApiFailure:
    return bad_params(
        f"Cannot {action} campaign {campaign['id']}: it is {campaign['campaignState']} ({allowed})",
        campaignId=campaign["id"],
        campaignState=campaign["campaignState"],
    )


def _touch(campaign: dict[str, Any], state: str | None = None) -> None:
    if state is not None:
        campaign["campaignState"] = state
    campaign["updatedAt"] = now_ms()
    campaign["updatedByUserId"] = CREATOR


# ---- sending -------------------------------------------------------------------------------


def _identities(email: str | None, user_id: str | None) -> set[tuple[str, str]]:
    found = set()
    if email:
        found.add(("email", email.lower()))
    if user_id:
        found.add(("userId", user_id))
    return found


def _deliver(
    project: Project,
    campaign: dict[str, Any],
    list_ids: list[int],
    suppression_list_ids: list[int],
    data_fields: dict[str, Any] | None = None,
    allow_repeat: bool = True,
) -> int:
    """Record one message per distinct member of ``list_ids``, minus suppressed users."""
    store = users(project)
    project_lists = lists(project)
    suppressed: set[tuple[str, str]] = set()
    for list_id in suppression_list_ids:
        members = project_lists[list_id].members.values() if list_id in project_lists else []
        for member in members:
            suppressed |= _identities(member.email, member.user_id)
    if not allow_repeat:
        for entry in messages(project):
            if entry.get("campaignId") == campaign["id"] and entry.get("status") == "sent":
                suppressed |= _identities(entry.get("email"), entry.get("userId"))
    settings = _settings(project).get(campaign["id"], {})
    merged = {**(settings.get("campaignDataFields") or {}), **(data_fields or {})}
    seen: set[tuple[str, str]] = set()
    sent = 0
    for list_id in list_ids:
        for member in project_lists[list_id].members.values():
            keys = _identities(member.email, member.user_id)
            if not keys or keys & seen or keys & suppressed:
                continue
            if store.is_forgotten(member.email, member.user_id):
                continue
            seen |= keys
            record_message(
                project,
                kind="campaign",
                medium=campaign["messageMedium"],
                campaignId=campaign["id"],
                templateId=campaign.get("templateId"),
                email=member.email,
                userId=member.user_id,
                sendAt=now_ms(),
                dataFields=dict(merged),
            )
            sent += 1
    return sent


def _send_blast(project: Project, campaign: dict[str, Any]) -> int:
    """Send a blast to its lists; it passes through Running and ends Finished."""
    _touch(campaign, "Running")
    campaign["startAt"] = min(campaign.get("startAt") or now_ms(), now_ms())
    list_ids = [i for i in campaign.get("listIds", []) if i in lists(project)]
    suppression = [i for i in campaign.get("suppressionListIds", []) if i in lists(project)]
    sent = _deliver(project, campaign, list_ids, suppression)
    campaign["sendSize"] = sent
    campaign["endedAt"] = now_ms()
    _touch(campaign, "Finished")
    return sent


def _advance(project: Project) -> None:
    """Send every scheduled blast whose time has come."""
    now = now_ms()
    for campaign in list(campaigns(project).values()):
        if (
            campaign["campaignState"] == "Scheduled"
            and campaign.get("type") == "Blast"
            and (campaign.get("startAt") or 0) <= now
        ):
            _send_blast(project, campaign)


def _cancel_pending(project: Project, campaign_id: int) -> None:
    for entry in messages(project):
        if entry.get("campaignId") == campaign_id and entry.get("status") == "scheduled":
            entry["status"] = "cancelled"


# ---- listing -------------------------------------------------------------------------------


def _states(call: Call) -> list[str]:
    states = call.args("campaignState")
    unknown = [s for s in states if s not in CAMPAIGN_STATES]
    if unknown:
        raise bad_params(
            f"Unknown campaignState {', '.join(unknown)}; valid: {', '.join(CAMPAIGN_STATES)}"
        )
    return states


def _sorted(items: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    field = sort.lstrip("+-")
    if field not in SORT_FIELDS:
        raise bad_params(f"Cannot sort campaigns by {sort!r}; use one of {', '.join(SORT_FIELDS)}")

    def key(campaign: dict[str, Any]) -> tuple[Any, ...]:
        value = campaign.get(field)
        if isinstance(value, str):
            value = value.lower()
        return (value is None, value if value is not None else 0, campaign["id"])

    ordered = sorted(items, key=key)
    return ordered[::-1] if sort.startswith("-") else ordered


def _page(call: Call, items: list[dict[str, Any]]) -> dict[str, Any]:
    states = _states(call)
    sort = call.arg("sort") or "id"
    if states:
        items = [c for c in items if c["campaignState"] in states]
    else:
        items = [c for c in items if c["campaignState"] != "Archived"]
    items = _sorted(items, sort)
    if call.arg("page") is None and call.arg("pageSize") is None:
        # Iterable's deprecated unpaged form: everything, without a total.
        return {"campaigns": [dict(c) for c in items]}
    page = paginate(call, items, default_size=DEFAULT_PAGE_SIZE, max_size=MAX_PAGE_SIZE)
    return {
        "campaigns": [dict(c) for c in page.items],
        "totalCampaignsCount": page.total,
        **page.links(),
    }


@handles("ITERABLE_LIST_CAMPAIGNS")
def list_campaigns(call: Call) -> dict[str, Any]:
    _advance(call.project)
    return _page(call, list(campaigns(call.project).values()))


@handles("ITERABLE_LIST_RECURRING_CHILD_CAMPAIGNS")
def list_recurring_child_campaigns(call: Call) -> dict[str, Any]:
    _advance(call.project)
    parent = _find(call.project, call.arg("id"))
    children = [
        c for c in campaigns(call.project).values() if c.get("recurringCampaignId") == parent["id"]
    ]
    return _page(call, children)


@handles("ITERABLE_GET_CAMPAIGN")
def get_campaign(call: Call) -> dict[str, Any]:
    _advance(call.project)
    return dict(_find(call.project, call.arg("id"), status=404))


# ---- create and schedule -------------------------------------------------------------------


def _parse_create_time(value: Any) -> datetime:
    return _shared.parse_time(value, "sendAt")


def _parse_iso(value: Any, name: str) -> datetime:
    return _shared.parse_time(value, name)


def _check_window(moment: datetime, window: timedelta) -> None:
    if moment > datetime.now(timezone.utc) + window + _WINDOW_SLACK:
        raise bad_params(f"sendAt must be at most {window.days} days in the future")


def _render_static(value: Any, data_fields: dict[str, Any]) -> Any:
    """Bake ``[[field]]`` placeholders into the copy (every locale), as Iterable does."""
    if isinstance(value, str) and "[[" in value:
        for name, replacement in data_fields.items():
            value = value.replace(f"[[{name}]]", str(replacement))
        return value
    if isinstance(value, dict):
        return {k: _render_static(v, data_fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_static(v, data_fields) for v in value]
    return value


@handles("ITERABLE_CREATE_CAMPAIGN")
def create_campaign(call: Call) -> dict[str, Any]:
    project = call.project
    _advance(project)
    call.require("name", "templateId")
    name = str(call.arg("name")).strip()
    if not name:
        raise bad_params("name must not be empty")
    template = require_template(project, call.arg("templateId"))
    list_ids = _int_list(call.arg("listIds"), "listIds")
    suppression_ids = _int_list(call.arg("suppressionListIds"), "suppressionListIds")
    for list_id in [*list_ids, *suppression_ids]:
        require_list(project, list_id)
    label_ids = _int_list(call.arg("labelIds"), "labelIds")
    if len(label_ids) > 50:
        raise bad_params("At most 50 labelIds may be given")
    missing_labels = [i for i in label_ids if i not in _labels(project)]
    if missing_labels:
        raise bad_params(f"Labels do not exist: {missing_labels}")
    send_mode = call.arg("sendMode") or "ProjectTimeZone"
    if send_mode not in ("ProjectTimeZone", "RecipientTimeZone"):
        raise bad_params(
            f"sendMode must be ProjectTimeZone or RecipientTimeZone, got {send_mode!r}"
        )
    start_zone = _zone(call.arg("startTimeZone"), "startTimeZone")
    default_zone = _zone(call.arg("defaultTimeZone"), "defaultTimeZone")
    if send_mode == "RecipientTimeZone" and start_zone is None:
        raise bad_params("sendMode RecipientTimeZone needs a startTimeZone")
    data_fields = _object(call.arg("dataFields"), "dataFields")
    campaign_data_fields = _object(call.arg("campaignDataFields"), "campaignDataFields")
    medium = template.get("messageMedium", "Email")
    if data_fields and medium != "Email":
        raise bad_params("dataFields are supported by email campaigns only")

    blast = bool(list_ids)
    start_at: int | None = None
    state = "Ready"
    if blast and call.bool_arg("scheduleSend", True):
        if call.arg("sendAt") in (None, ""):
            raise bad_params(
                "sendAt is required to schedule a blast campaign; "
                "set scheduleSend to false to create it unscheduled"
            )
        moment = _parse_create_time(call.arg("sendAt"))
        _check_window(moment, CREATE_WINDOW)
        start_at, state = _ms(moment), "Scheduled"

    now = now_ms()
    campaign_id, copy_id = project.next_id(), project.next_id()
    template_copy = copy.deepcopy(template)
    if data_fields:
        template_copy = _render_static(template_copy, data_fields)
    template_copy.update(
        templateId=copy_id,
        templateType="Blast" if blast else "Triggered",
        campaignId=campaign_id,
        createdAt=now,
        updatedAt=now,
    )
    templates(project)[copy_id] = template_copy
    campaign: dict[str, Any] = {
        "id": campaign_id,
        "name": name,
        "templateId": copy_id,
        "messageMedium": medium,
        "type": "Blast" if blast else "Triggered",
        "campaignState": state,
        "listIds": list_ids,
        "suppressionListIds": suppression_ids,
        "labels": [_labels(project)[i] for i in label_ids],
        "labelIds": label_ids,
        "createdAt": now,
        "updatedAt": now,
        "createdByUserId": CREATOR,
        "updatedByUserId": CREATOR,
    }
    if start_at is not None:
        campaign["startAt"] = start_at
    campaigns(project)[campaign_id] = campaign
    _settings(project)[campaign_id] = {
        "sendMode": send_mode,
        "startTimeZone": start_zone,
        "defaultTimeZone": default_zone,
        "campaignDataFields": campaign_data_fields,
    }
    return {"campaignId": campaign_id}


@handles("ITERABLE_SCHEDULE_CAMPAIGN")
def schedule_campaign(call: Call) -> dict[str, Any]:
    project = call.project
    if "api_scheduling" not in project.features:
        raise forbidden("API scheduling campaigns is not enabled for your project")
    _advance(project)
    campaign = _find(project, call.arg("campaignId"))
    if campaign.get("type") != "Blast":
        raise bad_params(f"Campaign {campaign['id']} is triggered; only blasts are scheduled")
    if campaign["campaignState"] not in ("Ready", "Draft"):
        raise _wrong_state(campaign, "schedule", "only an unscheduled Ready or Draft blast can be")
    call.require("sendAt")
    moment = _parse_iso(call.arg("sendAt"), "sendAt")
    _check_window(moment, SCHEDULE_WINDOW)
    zones = _object(call.arg("recipientTimeZone"), "recipientTimeZone")
    settings = _settings(project).setdefault(campaign["id"], {})
    if zones is not None:
        start_zone = _zone(zones.get("startTimeZone"), "recipientTimeZone.startTimeZone")
        default_zone = _zone(zones.get("defaultTimeZone"), "recipientTimeZone.defaultTimeZone")
        if start_zone is None or default_zone is None:
            raise bad_params("recipientTimeZone needs startTimeZone and defaultTimeZone")
        settings.update(
            sendMode="RecipientTimeZone", startTimeZone=start_zone, defaultTimeZone=default_zone
        )
    else:
        settings["sendMode"] = "ProjectTimeZone"
    campaign["startAt"] = _ms(moment)
    _touch(campaign, "Scheduled")
    return success(f"Campaign {campaign['id']} scheduled")


# ---- sending and stopping ------------------------------------------------------------------


@handles("ITERABLE_SEND_CAMPAIGN")
def send_campaign(call: Call) -> dict[str, Any]:
    project = call.project
    _advance(project)
    campaign = _find(project, call.arg("campaignId"))
    if campaign.get("type") != "Blast":
        raise bad_params(
            f"Campaign {campaign['id']} is a triggered campaign; send it with campaigns/trigger"
        )
    if campaign["campaignState"] not in ("Ready", "Scheduled"):
        raise _wrong_state(campaign, "send", "only a Ready or Scheduled blast can be sent")
    sent = _send_blast(project, campaign)
    return success(f"Campaign {campaign['id']} sent to {sent} users")


@handles("ITERABLE_TRIGGER_CAMPAIGN")
def trigger_campaign(call: Call) -> dict[str, Any]:
    project = call.project
    _advance(project)
    call.require("campaignId", "listIds")
    campaign = _find(project, call.arg("campaignId"))
    list_ids = _int_list(call.arg("listIds"), "listIds")
    if not list_ids:
        raise bad_params("listIds must be a non-empty array")
    suppression_ids = _int_list(call.arg("suppressionListIds"), "suppressionListIds")
    for list_id in [*list_ids, *suppression_ids]:
        require_list(project, list_id)
    if campaign.get("type") != "Triggered":
        raise bad_params(
            f"Campaign {campaign['id']} is a blast campaign; only triggered campaigns can be "
            "triggered"
        )
    if campaign["campaignState"] not in ("Ready", "Running"):
        raise _wrong_state(campaign, "trigger", "only a Ready or active campaign can be")
    data_fields = _object(call.arg("dataFields"), "dataFields")
    allow_repeat = call.bool_arg("allowRepeatMarketingSends", True)
    sent = _deliver(project, campaign, list_ids, suppression_ids, data_fields, allow_repeat)
    campaign["sendSize"] = (campaign.get("sendSize") or 0) + sent
    campaign.setdefault("startAt", now_ms())
    _touch(campaign)
    return success(f"Campaign {campaign['id']} triggered for {sent} users")


@handles("ITERABLE_CANCEL_CAMPAIGN")
def cancel_campaign(call: Call) -> dict[str, Any]:
    project = call.project
    _advance(project)
    call.require("campaignId")
    campaign = _find(project, call.arg("campaignId"))
    if campaign["campaignState"] not in ("Scheduled", "Recurring"):
        raise _wrong_state(campaign, "cancel", "only a Scheduled or Recurring campaign can be")
    _cancel_pending(project, campaign["id"])
    # Cancelling unschedules: the campaign is Ready again and can be rescheduled or sent.
    campaign.pop("startAt", None)
    _touch(campaign, "Ready")
    return success(f"Campaign {campaign['id']} cancelled")


@handles("ITERABLE_ABORT_CAMPAIGN")
def abort_campaign(call: Call) -> dict[str, Any]:
    project = call.project
    _advance(project)
    call.require("campaignId")
    campaign = _find(project, call.arg("campaignId"))
    if campaign["campaignState"] not in ("Running", "Starting"):
        raise _wrong_state(campaign, "abort", "only a Running campaign can be")
    _cancel_pending(project, campaign["id"])
    campaign["endedAt"] = now_ms()
    _touch(campaign, "Aborted")
    return success(f"Campaign {campaign['id']} aborted")


def _triggered(call: Call, feature_msg: str) -> dict[str, Any]:
    if "triggered_activation" not in call.project.features:
        raise forbidden(feature_msg)
    _advance(call.project)
    call.require("campaignId")
    campaign = _find(call.project, call.arg("campaignId"))
    if campaign.get("type") != "Triggered":
        raise bad_params(f"Campaign {campaign['id']} is not a triggered campaign")
    return campaign


@handles("ITERABLE_ACTIVATE_TRIGGERED_CAMPAIGN")
def activate_triggered_campaign(call: Call) -> dict[str, Any]:
    campaign = _triggered(call, "API triggered campaign activation is not enabled for your project")
    if campaign["campaignState"] not in ("Ready", "Draft", "Running"):
        raise _wrong_state(campaign, "activate", "only a Ready triggered campaign can be")
    if campaign["campaignState"] != "Running":
        campaign.setdefault("startAt", now_ms())
        _touch(campaign, "Running")
    return success(f"Campaign {campaign['id']} activated")


@handles("ITERABLE_DEACTIVATE_TRIGGERED_CAMPAIGN")
def deactivate_triggered_campaign(call: Call) -> dict[str, Any]:
    campaign = _triggered(
        call, "API triggered campaign deactivation is not enabled for your project"
    )
    if campaign["campaignState"] not in ("Ready", "Draft", "Running"):
        raise _wrong_state(campaign, "deactivate", "only an active triggered campaign can be")
    if campaign["campaignState"] == "Running":
        _touch(campaign, "Ready")
    return success(f"Campaign {campaign['id']} deactivated")


@handles("ITERABLE_ARCHIVE_CAMPAIGNS")
def archive_campaigns(call: Call) -> dict[str, Any]:
    project = call.project
    _advance(project)
    call.require("campaignIds")
    ids = call.arg("campaignIds")
    if not isinstance(ids, list) or not ids:
        raise bad_params("campaignIds must be a non-empty array of campaign ids")
    archived: list[int] = []
    failed: list[Any] = []
    for raw in ids:
        try:
            campaign = _find(project, raw)
        except ApiFailure:
            failed.append(raw)
            continue
        state = campaign["campaignState"]
        if state in ("Scheduled", "Recurring", "Running", "Starting"):
            _cancel_pending(project, campaign["id"])
        if state in ("Running", "Starting"):
            campaign["endedAt"] = now_ms()
        if state != "Archived":
            _touch(campaign, "Archived")
        archived.append(campaign["id"])
    return {"success": archived, "failed": failed}


# ---- metrics -------------------------------------------------------------------------------


def _metrics_time(value: Any, name: str, *, end_of_day: bool = False) -> int | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    moment = _shared.parse_time(text, name)
    if end_of_day and len(text) == len("YYYY-MM-DD"):  # a bare date includes its whole day
        moment += timedelta(days=1)
    return _ms(moment)


def _window(call: Call, *, inclusive_end: bool) -> tuple[int | None, int | None]:
    start = _metrics_time(call.arg("startDateTime"), "startDateTime")
    end = _metrics_time(call.arg("endDateTime"), "endDateTime", end_of_day=inclusive_end)
    if start is not None and end is not None and end < start:
        raise bad_params("endDateTime is before startDateTime")
    return start, end


def _sent(project: Project, start: int | None, end: int | None) -> list[dict[str, Any]]:
    return [
        m
        for m in messages(project)
        if m.get("status") == "sent"
        and (start is None or m.get("createdAt", 0) >= start)
        and (end is None or m.get("createdAt", 0) < end)
    ]


def _recipient(entry: dict[str, Any]) -> str:
    return str(entry.get("email") or entry.get("userId"))


def _email_counters(sent: list[dict[str, Any]]) -> dict[str, int]:
    emails = [m for m in sent if m.get("medium") == "Email"]
    return {
        "Total Email Sends": len(emails),
        "Unique Email Sends": len({_recipient(m) for m in emails}),
        "Total Emails Delivered": sum(1 for m in emails if not m.get("bouncedAt")),
        "Total Emails Bounced": sum(1 for m in emails if m.get("bouncedAt")),
        "Unique Email Opens": len({_recipient(m) for m in emails if m.get("openedAt")}),
        "Unique Email Clicks": len({_recipient(m) for m in emails if m.get("clickedAt")}),
    }


def _csv(header: list[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# The email counters both metrics answers carry, in the order _email_counters gives them.
EMAIL_COUNTER_COLUMNS = list(_email_counters([]))

METRICS_COLUMNS = [
    "id",
    *EMAIL_COUNTER_COLUMNS,
    *[f"Total {label} Sends" for medium, label in _MEDIUM_COLUMNS.items() if medium != "Email"],
]


@handles("ITERABLE_GET_CAMPAIGN_METRICS")
def get_campaign_metrics(call: Call) -> Reply:
    project = call.project
    _advance(project)
    raw_ids = call.args("campaignId")
    if not raw_ids:
        raise bad_params("campaignId is required")
    ids = [_int(v, "campaignId") for v in raw_ids]
    for campaign_id in ids:
        _find(project, campaign_id)
    start, end = _window(call, inclusive_end=False)
    sent = _sent(project, start, end)
    rows = []
    for campaign_id in dict.fromkeys(ids):
        own = [m for m in sent if m.get("campaignId") == campaign_id]
        row: dict[str, Any] = {"id": campaign_id, **_email_counters(own)}
        for medium, label in _MEDIUM_COLUMNS.items():
            if medium != "Email":
                row[f"Total {label} Sends"] = sum(1 for m in own if m.get("medium") == medium)
        rows.append(row)
    return Reply(_csv(METRICS_COLUMNS, rows), media_type="text/plain")


EXPERIMENT_COLUMNS = [
    "experimentId",
    "campaignId",
    "templateId",
    "variantName",
    "isControl",
    *EMAIL_COUNTER_COLUMNS,
]


@handles("ITERABLE_GET_EXPERIMENT_METRICS")
def get_experiment_metrics(call: Call) -> Reply:
    project = call.project
    _advance(project)
    experiment_ids = {_int(v, "experimentId") for v in call.args("experimentId")}
    campaign_ids = {_int(v, "campaignId") for v in call.args("campaignId")}
    start, end = _window(call, inclusive_end=True)
    sent = _sent(project, start, end)
    rows = []
    for experiment in sorted(experiments(project).values(), key=lambda e: e["id"]):
        wanted = (not experiment_ids and not campaign_ids) or (
            experiment["id"] in experiment_ids or experiment["campaignId"] in campaign_ids
        )
        campaign = campaigns(project).get(experiment["campaignId"])
        # Iterable reports email experiments only.
        if not wanted or campaign is None or campaign.get("messageMedium") != "Email":
            continue
        for variant in experiment.get("variants", []):
            own = [
                m
                for m in sent
                if m.get("campaignId") == campaign["id"]
                and m.get("templateId") == variant["templateId"]
            ]
            rows.append(
                {
                    "experimentId": experiment["id"],
                    "campaignId": campaign["id"],
                    "templateId": variant["templateId"],
                    "variantName": variant.get("name", ""),
                    "isControl": str(bool(variant.get("isControl"))).lower(),
                    **_email_counters(own),
                }
            )
    return Reply(_csv(EXPERIMENT_COLUMNS, rows), media_type="text/csv")
