"""Embedded messaging: the messages users are eligible for, and the events their devices report.

No API action creates embedded campaigns (they are built in Iterable's UI), so each project gets a
few on first use, spread over two placements. A user becomes eligible for them once they have a
profile; each (campaign, user) pair is one message with its own id. Events land in
``project.area("embedded_events", list)``; events about proofs are accepted but not recorded,
as Iterable documents.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from prefect_iterable.sandbox.handlers import _shared
from prefect_iterable.sandbox.handlers._base import Call, bad_params, handles, success
from prefect_iterable.sandbox.state import Project

_PLATFORMS = ("iOS", "Android", "Web")


def _seed_campaigns(project: Project) -> list[dict[str, Any]]:
    def button(ident: str, title: str, url: str) -> dict[str, Any]:
        return {"id": ident, "title": title, "action": {"type": "openUrl", "data": url}}

    return [
        {
            "campaignId": project.next_id(),
            "placementId": 101,
            "priorityOrder": 1,
            "platforms": _PLATFORMS,
            "isProof": False,
            "elements": {
                "title": "Welcome back",
                "body": "New arrivals are in.",
                "mediaUrl": "https://example.com/img/arrivals.png",
                "mediaUrlCaption": "New arrivals",
                "defaultAction": {"type": "openUrl", "data": "https://example.com/new"},
                "buttons": [button("shop", "Shop now", "https://example.com/shop")],
                "text": [{"label": "badge", "text": "NEW"}],
            },
            "payload": {"theme": "light"},
        },
        {
            "campaignId": project.next_id(),
            "placementId": 101,
            "priorityOrder": 2,
            "platforms": _PLATFORMS,
            "isProof": False,
            "elements": {
                "title": "Free shipping this week",
                "body": "On every order.",
                "buttons": [],
                "text": [],
            },
            "payload": {},
        },
        {
            "campaignId": project.next_id(),
            "placementId": 102,
            "priorityOrder": 1,
            "platforms": ("iOS", "Android"),  # an app-only campaign: not shown on the web
            "isProof": False,
            "elements": {
                "title": "Enjoying the app?",
                "body": "Rate us in the store.",
                "defaultAction": {"type": "action://rate", "data": ""},
                "buttons": [button("rate", "Rate", "https://example.com/rate")],
                "text": [],
            },
            "payload": {"prompt": "rating"},
        },
    ]


@dataclass
class Embedded:
    """A project's embedded campaigns and, per user, the messages made from them."""

    campaigns: list[dict[str, Any]]
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by user key

    def find(self, message_id: str) -> tuple[str, dict[str, Any]] | None:
        for owner, held in self.messages.items():
            for message in held:
                if message["messageId"] == message_id:
                    return owner, message
        return None


def embedded(project: Project) -> Embedded:
    return project.area("embedded", lambda: Embedded(_seed_campaigns(project)))


def events(project: Project) -> list[dict[str, Any]]:
    return project.area("embedded_events", list)


def _user_key(user: _shared.User) -> str:
    return f"email:{user.email.lower()}" if user.email is not None else f"userId:{user.user_id}"


def user_messages(project: Project, user: _shared.User) -> list[dict[str, Any]]:
    """The user's embedded messages, made from the project's campaigns on first use."""
    state = embedded(project)
    key = _user_key(user)
    if key not in state.messages:
        state.messages[key] = [
            {
                **campaign,
                "messageId": hashlib.sha1(
                    f"{project.id}:{campaign['campaignId']}:{key}".encode()
                ).hexdigest()[:32],
            }
            for campaign in state.campaigns
        ]
    return state.messages[key]


def _message_json(message: dict[str, Any], with_elements: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {
            "messageId": message["messageId"],
            "campaignId": message["campaignId"],
            "placementId": message["placementId"],
            "isProof": message["isProof"],
            "priorityOrder": message["priorityOrder"],
        },
        "payload": message["payload"],
    }
    if with_elements:
        body["elements"] = message["elements"]
    return body


def _int_list(call: Call, wire: str) -> list[int]:
    values = []
    for raw in call.args(wire):
        try:
            values.append(int(raw))
        except ValueError:
            raise bad_params(f"{wire} must be integers, got {raw!r}") from None
    return list(dict.fromkeys(values))


@handles("ITERABLE_GET_EMBEDDED_MESSAGES")
def get_embedded_messages(call: Call) -> dict[str, Any]:
    project = call.project
    email, user_id = _shared.user_identity(call)
    platform = call.arg("platform")
    if platform is not None and platform not in _PLATFORMS:
        raise bad_params(f"Unknown platform {platform!r}: use iOS, Android or Web")
    wanted = _int_list(call, "placementIds")
    held = set(call.args("currentMessageIds"))
    user = _shared.users(project).find(email, user_id)
    eligible = [] if user is None else user_messages(project, user)
    by_placement: dict[int, list[dict[str, Any]]] = {}
    for message in sorted(eligible, key=lambda m: (m["placementId"], m["priorityOrder"])):
        if platform is not None and platform not in message["platforms"]:
            continue
        by_placement.setdefault(message["placementId"], []).append(
            _message_json(message, with_elements=message["messageId"] not in held)
        )
    placements = wanted or sorted(by_placement)
    return {
        "placements": [
            {"placementId": pid, "embeddedMessages": by_placement.get(pid, [])}
            for pid in placements
        ]
    }


# ---- events --------------------------------------------------------------------------------


def _created_at(call: Call) -> int:
    value = call.arg("createdAt")
    if value is None:
        return int(time.time())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_params(f"createdAt must be a Unix timestamp in seconds, got {value!r}")
    return value


def _device_info(call: Call, required: bool = False) -> dict[str, Any] | None:
    info = call.arg("deviceInfo")
    if info is None:
        if required:
            raise bad_params("deviceInfo is required")
        return None
    if not isinstance(info, dict):
        raise bad_params("deviceInfo must be an object")
    missing = [k for k in ("appPackageName", "deviceId", "platform") if not info.get(k)]
    if missing:
        raise bad_params(f"deviceInfo is missing {', '.join(missing)}")
    if info["platform"] not in _PLATFORMS:
        raise bad_params(
            f"deviceInfo.platform must be iOS, Android or Web, not {info['platform']!r}"
        )
    return info


def _users_message(project: Project, user: _shared.User, message_id: Any) -> dict[str, Any]:
    user_messages(project, user)  # a user's messages exist once they have a profile
    found = embedded(project).find(str(message_id))
    if found is None or found[0] != _user_key(user):
        raise bad_params(f"Unknown embedded message {message_id} for this user")
    return found[1]


def _event(name: str, user: _shared.User, message: dict[str, Any] | None, **fields: Any) -> dict:
    entry: dict[str, Any] = {"eventName": name, "email": user.email, "userId": user.user_id}
    if message is not None:
        entry.update(
            messageId=message["messageId"],
            campaignId=message["campaignId"],
            placementId=message["placementId"],
        )
    entry.update({k: v for k, v in fields.items() if v is not None})
    return entry


def _track_one(call: Call, name: str, **extra: Any) -> dict[str, Any]:
    project = call.project
    call.require("messageId")
    email, user_id = _shared.user_identity(call)
    user = _shared.require_user(project, email, user_id)
    created_at = _created_at(call)
    device = _device_info(call)
    message = _users_message(project, user, call.arg("messageId"))
    if not message["isProof"]:
        events(project).append(
            _event(name, user, message, createdAt=created_at, deviceInfo=device, **extra)
        )
    return success()


@handles("ITERABLE_TRACK_EMBEDDED_CLICK")
def track_embedded_click(call: Call) -> dict[str, Any]:
    return _track_one(
        call,
        "embeddedClick",
        targetUrl=call.arg("targetUrl"),
        buttonIdentifier=call.arg("buttonIdentifier"),
    )


@handles("ITERABLE_TRACK_EMBEDDED_RECEIVED")
def track_embedded_received(call: Call) -> dict[str, Any]:
    return _track_one(call, "embeddedReceived")


@handles("ITERABLE_TRACK_EMBEDDED_SESSION")
def track_embedded_session(call: Call) -> dict[str, Any]:
    project = call.project
    email, user_id = _shared.user_identity(call)
    user = _shared.require_user(project, email, user_id)
    session = call.arg("session")
    if not isinstance(session, dict) or not session.get("id"):
        raise bad_params("session must be an object with an id")
    start, end = session.get("start"), session.get("end")
    if isinstance(start, int) and isinstance(end, int) and end < start:
        raise bad_params("session.end is before session.start")
    device = _device_info(call, required=True)
    created_at = _created_at(call)
    impressions = call.arg("impressions") or []
    if not isinstance(impressions, list) or not all(isinstance(i, dict) for i in impressions):
        raise bad_params("impressions must be a list of objects")
    shown = [(i, _users_message(project, user, i.get("messageId"))) for i in impressions]
    recorded = events(project)
    recorded.append(
        _event(
            "embeddedSession",
            user,
            None,
            sessionId=session["id"],
            sessionStart=start,
            sessionEnd=end,
            createdAt=created_at,
            deviceInfo=device,
        )
    )
    for impression, message in shown:
        if message["isProof"]:
            continue
        recorded.append(
            _event(
                "embeddedImpression",
                user,
                message,
                sessionId=session["id"],
                displayCount=impression.get("displayCount"),
                displayDuration=impression.get("displayDuration"),
                createdAt=created_at,
                deviceInfo=device,
            )
        )
    return success()
