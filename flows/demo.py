"""``python -m prefect_iterable.flows.demo`` (``./run.sh demo``): the flagship flows end to end, offline.

Starts the built-in Iterable sandbox on 127.0.0.1, saves an ``IterableCredentials`` block that
points at it, seeds an audience, then runs on Prefect's local embedded server:

1. a bulk import of generated users (NDJSON, batched under the 4 MB cap, checkpointed);
2. a campaign launch (template upsert, campaign, proofs, preview artifact; auto-approved here);
3. the webhook loop: a send in the sandbox → an ``emailBounce`` system webhook → the webhook
   receiver → an ``iterable.email.bounce`` event in Prefect → ``suppress_user`` (what the
   ``suppress-user`` automation runs), with no identifier in Prefect;
4. a GDPR forget of a handful of users, with its audit log;
5. an export and archive of yesterday's data into a local folder, with a verified manifest.

Everything it writes goes under ``./demo-output``. It prints where to look afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A loaded 2-core machine can take longer than the default 20 s to start the embedded server.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import httpx  # noqa: E402
from prefect import flow  # noqa: E402

from prefect_iterable.api.models.lists import Subscriber  # noqa: E402
from prefect_iterable.blocks import IterableCredentials  # noqa: E402
from prefect_iterable.sandbox import DEMO_API_KEY, SandboxServer  # noqa: E402
from prefect_iterable.tasks.lists import create_list, subscribe_to_list  # noqa: E402
from prefect_iterable.tasks.users import update_user  # noqa: E402

BLOCK_NAME = "iterable-sandbox"
FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia"]
CITIES = ["Lisbon", "Austin", "Osaka", "Nairobi", "Toronto", "Lyon", "Pune", "Denver"]


def _write_users(path: Path, count: int, seed: int = 7) -> None:
    """Generated users with realistic fields, one JSON object per line."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            out.write(
                json.dumps(
                    {
                        "email": f"user{n:06d}@example.com",
                        "userId": f"u-{n:06d}",
                        "dataFields": {
                            "firstName": rng.choice(FIRST_NAMES),
                            "city": rng.choice(CITIES),
                            "plan": rng.choice(["free", "pro", "team"]),
                            "lifetimeValue": round(rng.uniform(0, 2500), 2),
                            "newsletter": rng.random() < 0.7,
                        },
                    }
                )
                + "\n"
            )


@flow(name="demo-seed-audience")
def seed_audience(size: int, credentials_block: str) -> int:
    """Create the demo audience list and the reviewer's profile; return the list id."""
    credentials = IterableCredentials.load_or_env(credentials_block)
    audience = create_list(name=f"Demo audience {datetime.now():%H%M%S}", credentials=credentials)
    subscribe_to_list(
        list_id=audience.list_id,
        subscribers=[Subscriber(email=f"user{n:06d}@example.com") for n in range(size)],
        credentials=credentials,
    )
    # Iterable sends proofs only to known users: the reviewer gets a profile first.
    update_user(
        email="marketing-lead@example.com",
        data_fields={"firstName": "Morgan"},
        credentials=credentials,
    )
    return audience.list_id


@flow(name="demo-send-to-a-bouncing-address")
def send_with_a_bounce(template_id: int, credentials_block: str) -> int:
    """Send a blast to two users, one of whose address bounces; return the campaign id."""
    from prefect_iterable.tasks.campaigns import create_campaign, send_campaign

    credentials: IterableCredentials = IterableCredentials.load(credentials_block)  # type: ignore[assignment]
    audience = create_list(name=f"Demo bounce {datetime.now():%H%M%S}", credentials=credentials)
    subscribe_to_list(
        list_id=audience.list_id,
        subscribers=[{"email": "reader@example.com"}, {"email": "bounce-demo@example.com"}],
        credentials=credentials,
    )
    campaign = create_campaign(
        name="Demo: webhook loop",
        template_id=template_id,
        list_ids=[audience.list_id],
        schedule_send=False,
        credentials=credentials,
    )
    send_campaign(campaign_id=campaign.campaign_id, credentials=credentials)
    return campaign.campaign_id


def _bounce_event(campaign_id: int, timeout: float = 60) -> dict[str, Any]:
    """The iterable.email.bounce event about the campaign, once Prefect has it."""
    from prefect.client.orchestration import get_client

    query = {
        "filter": {
            "event": {"name": ["iterable.email.bounce"]},
            "related": {"id": [f"iterable.campaign.{campaign_id}"]},
        }
    }
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            events = client.request("POST", "/events/filter", json=query).json()["events"]
            if events:
                return events[0]
            if time.monotonic() > deadline:
                raise RuntimeError("the bounce event did not reach Prefect")
            time.sleep(0.5)


def webhook_loop(server: SandboxServer, api_key: str, template_id: int, output: Path) -> Any:
    """Sandbox send → bounce webhook → receiver → Prefect event → suppress_user."""
    import secrets

    from cryptography.fernet import Fernet
    from prefect.blocks.system import Secret

    from prefect_iterable.flows.suppress import suppress_user
    from prefect_iterable.webhooks import ReceiverSettings, WebhookReceiver
    from prefect_iterable.webhooks.server import ReceiverServer

    seal_key = Fernet.generate_key().decode()
    Secret(value=seal_key).save("iterable-webhook-seal-key", overwrite=True)
    header, secret = "X-Iterable-Webhook-Secret", secrets.token_urlsafe(16)
    settings = ReceiverSettings(header_name=header, header_secret=secret, seal_key=seal_key)
    with ReceiverServer(WebhookReceiver(settings)) as receiver:
        print(f"webhook receiver on {receiver.url}", flush=True)
        # The sandbox's control endpoint, as a user's own CI would configure it.
        httpx.post(
            f"{server.url}/_sandbox/webhooks",
            json={"apiKey": api_key, "url": receiver.url, "headers": {header: secret}},
        ).raise_for_status()
        campaign_id = send_with_a_bounce(template_id, BLOCK_NAME)
        event = _bounce_event(campaign_id)
    print(
        f"event {event['event']} about {event['resource']['prefect.resource.id'][:28]}…",
        flush=True,
    )
    # What the suppress-user deployment's trigger passes it.
    return suppress_user(
        sealed_identity=event["payload"]["sealed_identity"],
        user_sha256=event["payload"]["user_sha256"],
        reason=event["event"],
        recipient_state=event["payload"]["dataFields"].get("recipientState"),
        audit_storage=str(output / "suppression-audit"),
        credentials_block=BLOCK_NAME,
    )


def _step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def run(output: Path, users: int) -> dict[str, Any]:
    """Run the demo; return a summary of what each flow did."""
    from prefect_iterable.flows.bulk_import import bulk_import
    from prefect_iterable.flows.campaign_launch import EmailTemplateSpec, campaign_launch
    from prefect_iterable.flows.export_archive import export_archive
    from prefect_iterable.flows.gdpr import gdpr_forget

    output.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    with SandboxServer() as server:
        print(f"Iterable sandbox on {server.url}", flush=True)
        # Any key works against the sandbox; the secret-hygiene test passes a random one.
        api_key = os.environ.get("ITERABLE_DEMO_API_KEY", DEMO_API_KEY)
        if api_key != DEMO_API_KEY:
            server.sandbox.add_project(api_key)
        credentials = IterableCredentials(
            api_key=api_key,
            base_url=server.url,
            permissions=["read", "write", "send", "delete"],
        )
        credentials.save(BLOCK_NAME, overwrite=True)

        _step(f"Bulk import of {users:,} generated users")
        users_file = output / "users.ndjson"
        _write_users(users_file, users)
        started = time.monotonic()
        imported = bulk_import(
            source=str(users_file),
            kind="users",
            credentials_block=BLOCK_NAME,
            state_dir=str(output / "bulk-import-state"),
            resume=False,
        )
        summary["bulk_import"] = imported.model_dump(mode="json")
        print(f"done in {time.monotonic() - started:.1f} s: {_brief(imported)}", flush=True)

        _step("Campaign launch (auto-approved in demo mode)")
        audience_id = seed_audience(min(users, 200), BLOCK_NAME)
        launched = campaign_launch(
            campaign_name="Demo: spring newsletter",
            list_ids=[audience_id],
            template=EmailTemplateSpec(
                client_template_id="demo-spring-newsletter",
                name="Spring newsletter",
                subject="Spring is here, {{firstName}}",
                html="<p>Hello {{firstName}}, here is what is new this spring.</p>",
                from_name="Demo Shop",
                from_email="news@example.com",
            ),
            proof_recipients=["marketing-lead@example.com"],
            preview_data={"firstName": "Ada"},
            send_at=datetime.now(timezone.utc) + timedelta(days=2),
            auto_approve=True,
            credentials_block=BLOCK_NAME,
        )
        summary["campaign_launch"] = launched.model_dump(mode="json")
        print(f"campaign {launched.campaign_id}: {launched.decision}, {launched.state}", flush=True)

        _step("Webhook loop: a send, a bounce webhook, an event, a suppression")
        if launched.template_id is None:
            raise RuntimeError("the campaign launch reported no template to send from")
        suppressed = webhook_loop(server, api_key, launched.template_id, output)
        summary["webhook_loop"] = suppressed.model_dump(mode="json")
        print(f"done: {suppressed.outcome} (list {suppressed.list_id})", flush=True)

        _step("GDPR forget and audit of five users")
        forgotten = gdpr_forget(
            identifiers=[f"user{n:06d}@example.com" for n in range(5)],
            identifier_type="email",
            audit_storage=str(output / "gdpr-audit"),
            credentials_block=BLOCK_NAME,
        )
        summary["gdpr_forget"] = forgotten.model_dump(mode="json")
        print(f"done: {_brief(forgotten)}", flush=True)

        _step("Export and archive of yesterday (UTC)")
        archived = export_archive(
            data_types=["emailSend", "user"],
            storage_path=str(output / "archive"),
            credentials_block=BLOCK_NAME,
        )
        summary["export_archive"] = archived.model_dump(mode="json")
        print(f"done: {_brief(archived)}", flush=True)

        requests = server.sandbox.state.requests()
        summary["sandbox_requests"] = len(requests)
        summary["sandbox_429s"] = sum(1 for e in requests if e.status == 429)
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _brief(result: Any) -> str:
    fields = result.model_dump(mode="json")
    shown = {k: v for k, v in fields.items() if isinstance(v, (int, float, str, bool)) and v != ""}
    return ", ".join(f"{k}={v}" for k, v in list(shown.items())[:8])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m prefect_iterable.flows.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--output", type=Path, default=Path("demo-output"))
    parser.add_argument("--users", type=int, default=20_000, help="users to bulk import")
    args = parser.parse_args(argv)
    summary = run(args.output, args.users)
    print(
        f"""
=== Where to look
- {args.output}/summary.json: what each flow returned; the sandbox saw {summary["sandbox_requests"]}
  requests and answered {summary["sandbox_429s"]} of them with a 429.
- {args.output}/archive: the archived export files and their manifest.
- {args.output}/gdpr-audit: the GDPR audit log (hashes, never identifiers).
- {args.output}/suppression-audit: who the bounce webhook put on the suppression list (hashes).
- {args.output}/bulk-import-state: the import checkpoint and dead-letter file.
- The flow runs, their logs and artifacts: run `.venv/bin/prefect server start`, then open
  http://127.0.0.1:4200 (Runs and Artifacts).""",
        flush=True,
    )


if __name__ == "__main__":
    main()
