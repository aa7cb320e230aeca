"""Iterable system webhooks → Prefect events: a small ASGI receiver.

Open-source Prefect has no webhook endpoint, so this one takes Iterable's system webhooks
(emailSend, emailBounce, emailComplaint, emailUnSubscribe, pushSend, smsBounce, inAppSend,
customEvent, …) and emits one Prefect event each, named ``iterable.<channel>.<action>`` about the
resource ``iterable.user.<sha256>``. Serve it with ``python -m prefect_iterable.webhooks --port
8787`` or mount ``create_app(...)`` in any ASGI server.
"""

from prefect_iterable.webhooks.app import (
    PrefectSender,
    ReceiverSettings,
    WebhookReceiver,
    create_app,
    post_to_prefect,
)
from prefect_iterable.webhooks.events import (
    event_name,
    open_identity,
    prefect_event,
    seal_identity,
    user_hash,
)

__all__ = [
    "PrefectSender",
    "ReceiverSettings",
    "WebhookReceiver",
    "create_app",
    "event_name",
    "open_identity",
    "post_to_prefect",
    "prefect_event",
    "seal_identity",
    "user_hash",
]
