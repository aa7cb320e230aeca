"""The webhook receiver over real HTTP on loopback, emitting into the real Prefect test server."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import json
import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from prefect_iterable.webhooks import ReceiverSettings, WebhookReceiver, event_name
from prefect_iterable.webhooks.server import ReceiverServer

SECRET = "s3cr3t-shared-with-iterable"
HEADER = "X-Iterable-Webhook-Secret"
MARKED = "marked.person+webhook@example.com"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def bounce(campaign_id: int, message_id: str, email: str = MARKED, **data: Any) -> dict[str, Any]:
    return {
        "email": email,
        "eventName": "emailBounce",
        "dataFields": {
            "email": email,
            "campaignId": campaign_id,
            "templateId": 77,
            # Message ids are unique in Iterable; event ids derive from them, across tests too.
            "messageId": f"{campaign_id}-{message_id}",
            "recipientState": "HardBounce",
            "createdAt": "2026-12-03 10:00:00 +00:00",
            **data,
        },
    }


@pytest.fixture
def campaign_id() -> int:
    return random.randrange(10**8, 10**9)


@pytest.fixture
def receiver(prefect_server: None) -> Iterator[ReceiverServer]:
    app = WebhookReceiver(
        ReceiverSettings(basic_auth="iterable:pa55", header_name=HEADER, header_secret=SECRET)
    )
    with ReceiverServer(app) as server:
        yield server


def post(server: ReceiverServer, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        server.url,
        content=content,
        headers={"Content-Type": "application/json", HEADER: SECRET, **headers},
        timeout=60,
    )


def events_about(
    campaign_id: int, expected: int, settle: float = 0, wait: float = 30
) -> list[dict[str, Any]]:
    """Every event related to the campaign, once ``expected`` are there (or after ``wait`` s)."""
    from prefect.client.orchestration import get_client

    query = {"filter": {"related": {"id": [f"iterable.campaign.{campaign_id}"]}}, "limit": 50}

    async def fetch() -> list[dict[str, Any]]:
        async with get_client() as client:
            page = (await client.request("POST", "/events/filter", json=query)).json()
            found = list(page["events"])
            while page.get("next_page"):
                page = (await client._client.get(page["next_page"])).json()
                found += page["events"]
            return found

    deadline = time.monotonic() + wait
    while True:
        found = asyncio.run(fetch())
        if len(found) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if settle:  # give a wrongly emitted duplicate the time to show up
        time.sleep(settle)
        found = asyncio.run(fetch())
    return found


def test_event_names_follow_one_scheme():
    assert event_name("emailBounce") == "iterable.email.bounce"
    assert event_name("emailUnSubscribe") == "iterable.email.unsubscribe"
    assert event_name("emailComplaint") == "iterable.email.complaint"
    assert event_name("pushSend") == "iterable.push.send"
    assert event_name("smsBounce") == "iterable.sms.bounce"
    assert event_name("inAppSend") == "iterable.inapp.send"
    assert event_name("webPushClick") == "iterable.webpush.click"
    assert event_name("customEvent") == "iterable.customevent"
    with pytest.raises(ValueError):
        event_name("email.bounce; drop")


def test_a_webhook_becomes_one_event_about_a_hashed_user(receiver, campaign_id):
    answer = post(receiver, bounce(campaign_id, "m-1"))

    assert answer.status_code == 200, answer.text
    [event] = events_about(campaign_id, 1)
    assert event["event"] == "iterable.email.bounce"
    assert event["resource"]["prefect.resource.id"] == f"iterable.user.{sha(MARKED)}"
    related = {r["prefect.resource.id"]: r["prefect.resource.role"] for r in event["related"]}
    assert related == {
        f"iterable.campaign.{campaign_id}": "campaign",
        "iterable.template.77": "template",
    }
    assert event["payload"]["dataFields"]["recipientState"] == "HardBounce"
    assert event["payload"]["user_sha256"] == sha(MARKED)
    # No raw identifier anywhere in what Prefect stored.
    assert MARKED not in json.dumps(event)
    assert "marked.person" not in json.dumps(event)


def test_identifiers_stay_when_the_operator_opts_in(prefect_server, campaign_id):
    app = WebhookReceiver(
        ReceiverSettings(header_name=HEADER, header_secret=SECRET, include_identifiers=True)
    )
    with ReceiverServer(app) as server:
        assert post(server, bounce(campaign_id, "m-1")).status_code == 200
    [event] = events_about(campaign_id, 1)
    assert event["payload"]["email"] == MARKED


def test_retries_of_one_webhook_are_emitted_once(receiver, campaign_id):
    body = bounce(campaign_id, "m-retried")
    other = {**bounce(campaign_id, "m-retried"), "eventName": "emailSend"}

    async def burst() -> list[int]:
        async with httpx.AsyncClient(headers={HEADER: SECRET}, timeout=60) as client:
            answers = await asyncio.gather(
                *(client.post(receiver.url, json=body) for _ in range(5)),
                client.post(receiver.url, json=other),
            )
        return [a.status_code for a in answers]

    assert asyncio.run(burst()) == [200] * 6
    assert post(receiver, body).status_code == 200  # a late retry, after the first was emitted

    found = events_about(campaign_id, 2, settle=3)
    # Same message id, two event types: two events; the six copies of the bounce: one.
    assert sorted(e["event"] for e in found) == ["iterable.email.bounce", "iterable.email.send"]


def test_refused_without_the_right_secret_and_says_not_why(receiver, campaign_id):
    body = bounce(campaign_id, "m-1")
    basic = base64.b64encode(b"iterable:pa55").decode()
    wrong = base64.b64encode(b"iterable:nope").decode()

    no_auth = httpx.post(receiver.url, json=body, timeout=30)
    wrong_header = post(receiver, body, **{HEADER: "s3cr3t"})
    wrong_basic = httpx.post(
        receiver.url, json=body, headers={"Authorization": f"Basic {wrong}"}, timeout=30
    )
    assert [a.status_code for a in (no_auth, wrong_header, wrong_basic)] == [401, 401, 401]
    assert no_auth.text == wrong_header.text == wrong_basic.text

    right_basic = httpx.post(
        receiver.url, json=body, headers={"Authorization": f"Basic {basic}"}, timeout=30
    )
    assert right_basic.status_code == 200
    assert len(events_about(campaign_id, 1, settle=2)) == 1


def test_malformed_or_oversized_bodies_emit_nothing(prefect_server, campaign_id):
    app = WebhookReceiver(
        ReceiverSettings(header_name=HEADER, header_secret=SECRET, max_body_bytes=10_000)
    )
    with ReceiverServer(app) as server:
        valid = bounce(campaign_id, "m-ok")
        assert post(server, json.dumps(valid).encode()[:-3]).status_code == 400
        assert post(server, [valid, "not an object"]).status_code == 400
        assert post(server, [valid, {"eventName": 42}]).status_code == 400
        assert post(server, bounce(campaign_id, "m-big", padding="x" * 20_000)).status_code == 413
        assert app.emitted == 0
    assert events_about(campaign_id, 1, settle=2) == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_prefect_down_answers_503_and_forgets_nothing(prefect_server, campaign_id):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    body = bounce(campaign_id, "m-down")
    settings = ReceiverSettings(header_name=HEADER, header_secret=SECRET)
    down = WebhookReceiver(settings)
    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{_closed_port()}/api"}):
        with ReceiverServer(down) as server:
            first = post(server, body)
            again = post(server, body)
    # Never 200-and-drop: Iterable retries a 503, and a failed webhook is not taken as seen.
    assert (first.status_code, again.status_code) == (503, 503)
    assert down.emitted == 0 and down.duplicates == 0

    # Iterable's retry reaches a receiver whose Prefect is up: the event arrives once.
    with ReceiverServer(WebhookReceiver(settings)) as server:
        assert post(server, body).status_code == 200
    assert len(events_about(campaign_id, 1, settle=2)) == 1


@pytest.mark.timeout(900)  # a hang guard, not a speed check
def test_a_burst_of_2000_webhooks_loses_none(receiver, campaign_id):
    """2,000 webhooks at once: each answered 200, or 503 and then 200 on Iterable's retry.

    How fast the machine is decides only how many retries it takes, never the outcome: a 503 (or
    a dropped connection) is retried as Iterable would, and Prefect must then hold each event
    exactly once.
    """
    bodies = [
        bounce(campaign_id, f"m-{n}", email=f"user{n}@example.com") | {"eventName": "emailSend"}
        for n in range(2000)
    ]

    def burst(indices: list[int]) -> dict[int, int | str]:
        """One round: every pending webhook at once over 200 connections, each its own client, as
        Iterable's senders are. (One httpx AsyncClient with 200 connections took 218 s for what
        this does in 12: it measured the test's client, not the receiver.)"""

        def deliver(chunk: list[int]) -> list[tuple[int, int | str]]:
            answers: list[tuple[int, int | str]] = []
            with httpx.Client(headers={HEADER: SECRET}, timeout=120) as c:
                for n in chunk:
                    try:
                        answers.append((n, c.post(receiver.url, json=bodies[n]).status_code))
                    except httpx.TransportError as exc:
                        answers.append((n, type(exc).__name__))
            return answers

        with concurrent.futures.ThreadPoolExecutor(200) as pool:
            parts = pool.map(deliver, [indices[i::200] for i in range(200)])
            return dict(answer for part in parts for answer in part)

    history: dict[int, list[int | str]] = {n: [] for n in range(2000)}
    pending = list(range(2000))
    for _ in range(20):  # Iterable retries a failed webhook for days; 20 rounds is plenty here
        answers = burst(pending)
        assert sorted(answers) == pending  # every webhook of the round got an answer or an error
        for n in pending:
            history[n].append(answers[n])
        pending = [n for n in pending if history[n][-1] != 200]
        if not pending:
            break

    assert pending == [], {n: history[n] for n in pending[:5]}
    # Nothing but "not now" (a 503, or a connection the loaded machine dropped) before the 200.
    assert all(s == 503 or isinstance(s, str) for h in history.values() for s in h[:-1])
    found = events_about(campaign_id, 2000, settle=2, wait=600)
    assert len(found) == 2000 and len({e["id"] for e in found}) == 2000
    assert {e["resource"]["prefect.resource.id"] for e in found} == {
        f"iterable.user.{sha(f'user{n}@example.com')}" for n in range(2000)
    }
    # Batched: fewer requests to Prefect than events handed to it.
    assert receiver.app.emitted >= 2000
    assert receiver.app.batches < receiver.app.emitted


def test_the_loop_sandbox_send_bounce_webhook_event_suppression(
    prefect_server, sandbox, sandbox_server, api_key, project, credentials, client, tmp_path
):
    """A send in the sandbox → its webhooks → Prefect events → the suppression flow, no PII."""
    from cryptography.fernet import Fernet
    from prefect.blocks.system import Secret

    from prefect_iterable.flows.suppress import DEFAULT_SUPPRESSION_LIST, suppress_user
    from prefect_iterable.sandbox.data import User, UserList, lists, templates

    suffix = random.randrange(10**9)
    key = Fernet.generate_key().decode()
    Secret(value=key).save(f"seal-{suffix}", overwrite=True)
    credentials.save(f"loop-{suffix}", overwrite=True)
    bounced = f"bounce.marked.{suffix}@example.com"
    templates(project)[901] = {
        "templateId": 901,
        "name": "Loop",
        "messageMedium": "Email",
        "templateType": "Base",
        "subject": "Hi",
    }
    audience = UserList(id=902, name="loop audience")
    for email in (f"fine.{suffix}@example.com", bounced):
        audience.members[email] = User(email=email, user_id=None)
    lists(project)[902] = audience

    settings = ReceiverSettings(header_name=HEADER, header_secret=SECRET, seal_key=key)
    with ReceiverServer(WebhookReceiver(settings)) as receiver:
        configured = httpx.post(
            f"{sandbox_server.url}/_sandbox/webhooks",
            json={"apiKey": api_key, "url": receiver.url, "headers": {HEADER: SECRET}},
        )
        assert configured.json() == {"configured": True}
        campaign_id = client.call(
            "ITERABLE_CREATE_CAMPAIGN",
            name="Loop",
            template_id=901,
            list_ids=[902],
            schedule_send=False,
        )["campaignId"]
        client.call("ITERABLE_SEND_CAMPAIGN", campaign_id=campaign_id)
        found = events_about(campaign_id, 3, settle=1)

    assert sorted(e["event"] for e in found) == [
        "iterable.email.bounce",
        "iterable.email.send",
        "iterable.email.send",
    ]
    assert "marked" not in json.dumps(found)
    [event] = [e for e in found if e["event"] == "iterable.email.bounce"]
    assert event["resource"]["prefect.resource.id"] == f"iterable.user.{sha(bounced)}"

    # What the suppress-user automation does with the event (its trigger's parameters).
    params = {
        "sealed_identity": event["payload"]["sealed_identity"],
        "user_sha256": event["payload"]["user_sha256"],
        "reason": event["event"],
        "recipient_state": event["payload"]["dataFields"]["recipientState"],
        "seal_key_block": f"seal-{suffix}",
        "audit_storage": str(tmp_path / "audit"),
        "credentials_block": f"loop-{suffix}",
    }
    first = suppress_user(**params)
    again = suppress_user(**params)

    assert (first.outcome, again.outcome) == ("suppressed", "already suppressed")
    [suppression] = [x for x in lists(project).values() if x.name == DEFAULT_SUPPRESSION_LIST]
    assert list(suppression.members) == [bounced]
    assert len(sandbox.state.requests("ITERABLE_SUBSCRIBE_TO_LIST", project_id=project.id)) == 1
    audit = (tmp_path / "audit" / "suppressions.jsonl").read_text()
    assert sha(bounced) in audit and "marked" not in audit
