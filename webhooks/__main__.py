"""``python -m prefect_iterable.webhooks``: serve the receiver on loopback until interrupted.

The shared secret comes from a Prefect Secret block (``--secret-block``) or the environment
(``ITERABLE_WEBHOOK_SECRET`` for the custom header, ``ITERABLE_WEBHOOK_BASIC_AUTH`` as
``user:password``, ``ITERABLE_WEBHOOK_SEAL_KEY``), never from the command line, where ``ps``
would show it.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import uvicorn

from prefect_iterable.webhooks.app import ReceiverSettings, WebhookReceiver


def _secret(block: str | None, variable: str) -> str | None:
    if block:
        from prefect.blocks.system import Secret

        secret: Any = Secret.load(block)  # sync context: a block, not a coroutine
        return str(secret.get())
    return os.environ.get(variable) or None


def main(argv: list[str] | None = None) -> None:
    """Serve Iterable system webhooks as Prefect events (to the server of PREFECT_API_URL)."""
    parser = argparse.ArgumentParser(
        prog="python -m prefect_iterable.webhooks", description=main.__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument(
        "--header",
        default="X-Iterable-Webhook-Secret",
        help="the custom header Iterable sends the shared secret in",
    )
    parser.add_argument("--secret-block", help="a Prefect Secret block holding the shared secret")
    parser.add_argument(
        "--seal-key-block",
        help="a Prefect Secret block holding a Fernet key: payloads then carry the identifiers "
        "encrypted (sealed_identity), for flows that must act on the user",
    )
    parser.add_argument(
        "--include-identifiers",
        action="store_true",
        help="keep emails, userIds and phone numbers in event payloads (off: hashes only)",
    )
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    settings = ReceiverSettings(
        basic_auth=os.environ.get("ITERABLE_WEBHOOK_BASIC_AUTH") or None,
        header_name=args.header,
        header_secret=_secret(args.secret_block, "ITERABLE_WEBHOOK_SECRET"),
        seal_key=_secret(args.seal_key_block, "ITERABLE_WEBHOOK_SEAL_KEY"),
        include_identifiers=args.include_identifiers,
        max_body_bytes=args.max_body_bytes,
    )
    app = WebhookReceiver(settings)
    print(f"Iterable webhook receiver on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
