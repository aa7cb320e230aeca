"""Channels and message types: fixed for every project, as a new Iterable project has them."""

from __future__ import annotations

from typing import Any

from prefect_iterable.sandbox.handlers._base import Call, handles

CHANNELS: list[dict[str, Any]] = [
    {"id": 1, "name": "Marketing email", "channelType": "Marketing", "messageMedium": "Email"},
    {
        "id": 2,
        "name": "Transactional email",
        "channelType": "Transactional",
        "messageMedium": "Email",
    },
    {"id": 3, "name": "Push", "channelType": "Marketing", "messageMedium": "Push"},
    {"id": 4, "name": "SMS", "channelType": "Marketing", "messageMedium": "SMS"},
]

MESSAGE_TYPES: list[dict[str, Any]] = [
    {"id": 11, "name": "Newsletter", "channelId": 1, "subscriptionPolicy": "OptOut"},
    {"id": 12, "name": "Receipts", "channelId": 2, "subscriptionPolicy": "OptOut"},
    {"id": 13, "name": "Push alerts", "channelId": 3, "subscriptionPolicy": "OptIn"},
    {
        "id": 14,
        "name": "SMS offers",
        "channelId": 4,
        "subscriptionPolicy": "OptIn",
        "frequencyCap": {"days": 1, "messages": 2},
    },
]


@handles("ITERABLE_LIST_CHANNELS")
def list_channels(call: Call) -> dict[str, Any]:
    return {"channels": CHANNELS}


@handles("ITERABLE_LIST_MESSAGE_TYPES")
def list_message_types(call: Call) -> dict[str, Any]:
    return {"messageTypes": MESSAGE_TYPES}
