"""System webhooks: the sandbox posts to a URL what happens to the emails it sends, as Iterable does.

A project's system webhooks are set with ``configure(project, url, headers)`` (or
``POST /_sandbox/webhooks``). For each email it sends (a blast or a targeted send), the sandbox
posts ``emailSend``; to an address whose local part starts with ``bounce`` it then posts
``emailBounce`` (a hard bounce), and to one starting with ``complaint``, ``emailComplaint``.
Bodies carry ``email``, ``eventName`` and ``dataFields`` (campaignId, templateId, messageId,
createdAt…), Iterable's shape. Delivery runs on a background thread and retries until a 2xx, as
Iterable retries, so a receiver answering 503 gets the webhook again.
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import datetime, timezone
from typing import Any

import httpx

from prefect_iterable.sandbox.state import Project

__all__ = ["configure", "deliveries", "on_message"]

_AREA = "system_webhooks"
_ATTEMPTS = 20


def configure(project: Project, url: str, headers: dict[str, str] | None = None) -> None:
    """Post this project's email events to ``url`` with ``headers`` (replaces any earlier one)."""
    settings: dict[str, Any] = project.area(_AREA, dict)
    settings.update(url=url, headers=dict(headers or {}), delivered=[])


def deliveries(project: Project) -> list[dict[str, Any]]:
    """The webhook bodies delivered so far (answered 2xx), oldest first."""
    settings: dict[str, Any] = project.area(_AREA, dict)
    return list(settings.get("delivered", []))


def on_message(project: Project, entry: dict[str, Any]) -> None:
    """Post the webhooks for one recorded message, if the project has a URL and it is a sent email."""
    config = project.areas.get(_AREA)
    if not config or entry.get("medium") != "Email" or entry.get("status") != "sent":
        return
    if entry.get("kind") not in ("campaign", "target") or not entry.get("email"):
        return
    local = str(entry["email"]).split("@", 1)[0].lower()
    names = ["emailSend"]
    if local.startswith("bounce"):
        names.append("emailBounce")
        entry["bouncedAt"] = entry.get("createdAt")
    elif local.startswith("complaint"):
        names.append("emailComplaint")
    for name in names:
        _outbox.put((config, _body(name, entry)))
    _start()


def _body(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    created = datetime.fromtimestamp(entry.get("createdAt", 0) / 1000, timezone.utc)
    data: dict[str, Any] = {
        "email": entry["email"],
        "campaignId": entry.get("campaignId"),
        "templateId": entry.get("templateId"),
        "messageId": entry["messageId"],
        "createdAt": created.strftime("%Y-%m-%d %H:%M:%S +00:00"),
    }
    if entry.get("userId"):
        data["userId"] = entry["userId"]
    if name == "emailBounce":
        data["recipientState"] = "HardBounce"
        data["diagnosticCode"] = "smtp; 550 5.1.1 user unknown"
    return {"email": entry["email"], "eventName": name, "dataFields": data}


_outbox: queue.Queue[tuple[dict[str, Any], dict[str, Any]]] = queue.Queue()
_thread: threading.Thread | None = None
_lock = threading.Lock()


def _start() -> None:
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_deliver_forever, name="system-webhooks", daemon=True)
            _thread.start()


def _deliver_forever() -> None:
    with httpx.Client(timeout=30) as client:
        while True:
            config, body = _outbox.get()
            for attempt in range(_ATTEMPTS):
                try:
                    answer = client.post(config["url"], json=body, headers=config["headers"])
                    if answer.is_success:
                        config["delivered"].append(body)
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(min(0.2 * 2**attempt, 5.0))
