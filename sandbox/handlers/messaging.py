"""Targeted sends, their cancels and the in-app queues the SDKs read.

A targeted send needs an API-triggered campaign of the endpoint's medium that has been activated
(Iterable: "Activated triggered campaigns are in the Running state, and you can send them to
users"), and a recipient, created when the project allows it. Each send is one entry in the
shared message log; its number is the ``scheduledMessageId`` the send answers with and the cancel
takes. An entry stays ``scheduled`` until its ``sendAt`` passes, then counts as ``sent``.
"""

from __future__ import annotations

import re
from typing import Any

from prefect_iterable.sandbox.handlers import _shared
from prefect_iterable.sandbox.handlers._base import ApiFailure, Call, bad_params, handles, success
from prefect_iterable.sandbox.state import Project

# Endpoint medium -> the campaign ``messageMedium`` it sends.
_SEND_MEDIUM = {
    "ITERABLE_SEND_IN_APP": "InApp",
    "ITERABLE_SEND_PUSH": "Push",
    "ITERABLE_SEND_WHATS_APP": "WhatsApp",
}
_CANCEL_MEDIUM = {
    "ITERABLE_CANCEL_EMAIL": "Email",
    "ITERABLE_CANCEL_IN_APP": "InApp",
    "ITERABLE_CANCEL_PUSH": "Push",
    "ITERABLE_CANCEL_WEB_PUSH": "WebPush",
    "ITERABLE_CANCEL_WHATS_APP": "WhatsApp",
}

_DAY_MS = 86_400_000
_DEFAULT_IN_APP_LIFETIME_MS = 90 * _DAY_MS  # Iterable's default in-app expiry
_MEDIUM_PRIORITY = 300.5  # Iterable's "medium" in-app priority level
_MERGE_FIELD = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def campaigns(project: Project) -> dict[int, dict[str, Any]]:
    """Campaigns by id, as the campaigns area keeps them."""
    return project.area("campaigns", dict)


def _parse_send_at(value: Any) -> int:
    send_at = _shared.parse_time_ms(value, "sendAt")
    if send_at > _shared.now_ms() + 365 * _DAY_MS:
        raise bad_params("sendAt may be at most 365 days in the future")
    return send_at


def _scheduled_id(entry: dict[str, Any]) -> int | None:
    number = entry.get("scheduledMessageId")
    return None if number is None else int(number)


def _settle(entry: dict[str, Any]) -> dict[str, Any]:
    """A scheduled message whose time has come has gone out."""
    if entry.get("status") == "scheduled" and (entry.get("sendAt") or 0) <= _shared.now_ms():
        entry["status"] = "sent"
    return entry


def _is_for(entry: dict[str, Any], user: _shared.User) -> bool:
    email = entry.get("email")
    return (
        email is not None and user.email is not None and email.lower() == user.email.lower()
    ) or (entry.get("userId") is not None and entry.get("userId") == user.user_id)


def _require_campaign(project: Project, campaign_id: int, medium: str) -> dict[str, Any]:
    campaign = campaigns(project).get(campaign_id)
    if campaign is None:
        raise bad_params(f"Campaign {campaign_id} does not exist", campaignId=campaign_id)
    found = str(campaign.get("messageMedium", ""))
    if found.lower() != medium.lower():
        raise bad_params(
            f"Campaign {campaign_id} is a {found or 'medium-less'} campaign, not {medium}",
            campaignId=campaign_id,
        )
    if campaign.get("type", "Triggered") != "Triggered":
        raise bad_params(
            f"Campaign {campaign_id} is a {campaign['type']} campaign; targeted sends need an "
            "API-triggered campaign",
            campaignId=campaign_id,
        )
    state = campaign.get("campaignState", "Running")
    if state != "Running":
        raise bad_params(
            f"Campaign {campaign_id} is {state}; activate it before sending",
            campaignId=campaign_id,
        )
    return campaign


def _target(call: Call) -> dict[str, Any]:
    project = call.project
    medium = _SEND_MEDIUM[call.action]
    call.require("campaignId")
    campaign_id = call.int_arg("campaignId")
    assert campaign_id is not None
    email, user_id = _shared.check_identity(
        project, call.arg("recipientEmail"), call.arg("recipientUserId")
    )
    data_fields = call.arg("dataFields")
    if data_fields is not None and not isinstance(data_fields, dict):
        raise bad_params("dataFields must be a JSON object")
    campaign = _require_campaign(project, campaign_id, medium)
    user = _shared.get_or_create_user(project, email, user_id)
    now = _shared.now_ms()
    send_at = _parse_send_at(call.arg("sendAt")) if call.arg("sendAt") is not None else now
    if call.bool_arg("allowRepeatMarketingSends", default=True) is False:
        earlier = [
            m
            for m in _shared.messages(project)
            if m.get("campaignId") == campaign_id
            and m.get("status") != "cancelled"
            and _is_for(m, user)
        ]
        if earlier:
            raise bad_params(
                f"User already received campaign {campaign_id} and allowRepeatMarketingSends "
                "is false",
                campaignId=campaign_id,
            )
    scheduled_id = project.next_id()
    _shared.record_message(
        project,
        scheduledMessageId=scheduled_id,
        kind="target",
        medium=medium,
        campaignId=campaign_id,
        templateId=campaign.get("templateId"),
        email=user.email,
        userId=user.user_id,
        status="scheduled" if send_at > now else "sent",
        sendAt=send_at,
        dataFields=dict(data_fields or {}),
        metadata=call.arg("metadata"),
    )
    return success("", scheduledMessageId=scheduled_id)


@handles("ITERABLE_SEND_IN_APP")
def send_in_app(call: Call) -> dict[str, Any]:
    return _target(call)


@handles("ITERABLE_SEND_PUSH")
def send_push(call: Call) -> dict[str, Any]:
    return _target(call)


@handles("ITERABLE_SEND_WHATS_APP")
def send_whats_app(call: Call) -> dict[str, Any]:
    return _target(call)


# ---- cancels -------------------------------------------------------------------------------


def _cancellable(entry: dict[str, Any], what: str) -> dict[str, Any]:
    status = _settle(entry).get("status")
    if status == "sent":
        raise bad_params(f"{what} was already sent and cannot be cancelled")
    if status == "cancelled":
        raise bad_params(f"{what} was already cancelled")
    return entry


def _cancel(call: Call) -> dict[str, Any]:
    project = call.project
    medium = _CANCEL_MEDIUM[call.action]
    sends = [
        m
        for m in _shared.messages(project)
        if m.get("kind") == "target" and m.get("medium") == medium
    ]
    if call.arg("scheduledMessageId") is not None:
        wanted = call.int_arg("scheduledMessageId")
        found = next((m for m in sends if _scheduled_id(m) == wanted), None)
        if found is None:
            raise bad_params(f"No scheduled {medium} message with id {wanted}")
        _cancellable(found, f"Message {wanted}")["status"] = "cancelled"
        return success(f"Cancelled scheduled message {wanted}")
    if call.arg("campaignId") is None:
        raise bad_params(
            "Request must include a campaignId and an email or userId, or a scheduledMessageId"
        )
    campaign_id = call.int_arg("campaignId")
    email, user_id = _shared.user_identity(call)
    user = _shared.require_user(project, email, user_id)
    mine = [_settle(m) for m in sends if m.get("campaignId") == campaign_id and _is_for(m, user)]
    waiting = [m for m in mine if m["status"] == "scheduled"]
    if not waiting:
        what = f"Campaign {campaign_id}'s {medium} message to this user"
        if mine:
            _cancellable(mine[-1], what)
        raise bad_params(f"No scheduled {medium} message of campaign {campaign_id} for this user")
    for entry in waiting:
        entry["status"] = "cancelled"
    return success(f"Cancelled {len(waiting)} scheduled message(s) of campaign {campaign_id}")


@handles("ITERABLE_CANCEL_EMAIL")
def cancel_email(call: Call) -> dict[str, Any]:
    return _cancel(call)


@handles("ITERABLE_CANCEL_IN_APP")
def cancel_in_app(call: Call) -> dict[str, Any]:
    return _cancel(call)


@handles("ITERABLE_CANCEL_PUSH")
def cancel_push(call: Call) -> dict[str, Any]:
    return _cancel(call)


@handles("ITERABLE_CANCEL_WEB_PUSH")
def cancel_web_push(call: Call) -> dict[str, Any]:
    return _cancel(call)


@handles("ITERABLE_CANCEL_WHATS_APP")
def cancel_whats_app(call: Call) -> dict[str, Any]:
    return _cancel(call)


# ---- in-app queues -------------------------------------------------------------------------


def _render(html: str, fields: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        found: Any = fields
        for part in match.group(1).split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return "" if found is None else str(found)

    return _MERGE_FIELD.sub(value, html)


def _expiry(template: dict[str, Any], sent_at: int) -> int:
    absolute = template.get("expirationDateTime")
    if absolute:
        try:
            return _shared.parse_time_ms(absolute, "expirationDateTime")
        except ApiFailure:
            pass
    relative = re.fullmatch(r"now\+(\d+)d", str(template.get("expirationDuration") or ""))
    if relative:
        return sent_at + int(relative.group(1)) * _DAY_MS
    return sent_at + _DEFAULT_IN_APP_LIFETIME_MS


def _in_app_json(project: Project, entry: dict[str, Any], user: _shared.User, web: bool) -> dict:
    template = _shared.templates(project).get(entry.get("templateId") or -1, {})
    sent_at = int(entry.get("sendAt") or entry["createdAt"])
    # Request dataFields override the profile's for this message only.
    fields = {**user.data_fields, **(entry.get("dataFields") or {})}
    content: dict[str, Any] = {
        "html": _render(str(template.get("html", "")), fields),
        "inAppDisplaySettings": template.get(
            "inAppDisplaySettings",
            {"top": {"percentage": 0}, "bottom": {"percentage": 0}, "shouldAnimate": False},
        ),
        "webInAppDisplaySettings": template.get("webInAppDisplaySettings", {"position": "Center"}),
    }
    inbox = template.get("inboxMetadata")
    message: dict[str, Any] = {
        "messageId": entry["messageId"],
        "campaignId": entry.get("campaignId"),
        "content": content,
        "createdAt": sent_at,
        "expiresAt": _expiry(template, sent_at),
        "customPayload": template.get("payload") or {},
        "trigger": {"type": template.get("trigger", "immediate")},
        "priorityLevel": template.get("priorityLevel", _MEDIUM_PRIORITY),
        "saveToInbox": inbox is not None,
        "read": bool(entry.get("read", False)),
        "jsonOnly": False,
        "messageType": "Web" if web else "Mobile",
        "typeOfContent": "Static",
    }
    if inbox is not None:
        message["inboxMetadata"] = inbox
    return message


def _in_app_messages(call: Call, web: bool) -> dict[str, Any]:
    project = call.project
    call.require("count")
    count = call.int_arg("count")
    assert count is not None
    if count < 1:
        raise bad_params("count must be a positive integer")
    email, user_id = _shared.user_identity(call)
    platform = "Web" if web else call.arg("platform")
    if platform not in (None, "iOS", "Android", "Web", "OTT"):
        raise bad_params(f"Unknown platform {platform!r}: use iOS, Android, Web or OTT")
    package = call.arg("packageName")
    user = _shared.users(project).find(email, user_id)
    if user is None:
        return {"inAppMessages": []}
    now = _shared.now_ms()
    found: list[tuple[int, int, dict[str, Any]]] = []
    for seq, entry in enumerate(_shared.messages(project)):
        if entry.get("medium") != "InApp" or not _is_for(entry, user):
            continue
        if _settle(entry).get("status") != "sent":
            continue
        campaign = campaigns(project).get(entry.get("campaignId") or -1, {})
        # An app-specific ("selective") campaign shows only in the app it names.
        if campaign.get("packageName") is not None and (
            campaign.get("packageName") != package or campaign.get("platform") != platform
        ):
            continue
        message = _in_app_json(project, entry, user, web)
        if message["expiresAt"] > now:
            found.append((message["createdAt"], seq, message))
    found.sort(key=lambda item: item[:2], reverse=True)
    return {"inAppMessages": [message for _, _, message in found[:count]]}


@handles("ITERABLE_GET_IN_APP_MESSAGES")
def get_in_app_messages(call: Call) -> dict[str, Any]:
    return _in_app_messages(call, web=False)


@handles("ITERABLE_GET_WEB_IN_APP_MESSAGES")
def get_web_in_app_messages(call: Call) -> dict[str, Any]:
    return _in_app_messages(call, web=True)
