"""Tasks for Iterable's system webhooks: list them and change their settings.

Iterable's API cannot create or delete webhooks; that is done in Iterable's UI.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import PlainSerializer, SecretStr

from prefect_iterable.api.models.webhooks import (
    HttpsUrl,
    Webhook,
    WebhookAuthType,
    WebhookHeader,
    WebhooksResponse,
)
from prefect_iterable.api.types import PositiveId
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task

__all__ = ["list_webhooks", "update_webhook"]

# Kept secret in reprs and logs, but sent as itself.
_AuthToken = Annotated[
    SecretStr, PlainSerializer(lambda s: s.get_secret_value(), return_type=str, when_used="json")
]


@iterable_task("ITERABLE_LIST_WEBHOOKS")
def list_webhooks(*, credentials: IterableCredentials | None = None) -> WebhooksResponse:
    """List the project's system webhooks and what each is called for.

    Use it to audit where Iterable posts message events, or to find a webhook's id before
    ``update_webhook``. Auth tokens are never returned.

    ITERABLE_LIST_WEBHOOKS: GET /api/webhooks (no documented rate limit).

    Args:
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The webhooks, each with its id, endpoint, auth type and enabled flags.
    """


@iterable_task("ITERABLE_UPDATE_WEBHOOK", run_name="update-webhook-{webhook_id}")
def update_webhook(
    webhook_id: PositiveId,
    enabled: bool | None = None,
    headers: list[WebhookHeader] | None = None,
    auth_type: WebhookAuthType | None = None,
    endpoint: HttpsUrl | None = None,
    auth_token: _AuthToken | None = None,
    blast_send_enabled: bool | None = None,
    triggered_send_enabled: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> Webhook:
    """Change a system webhook's settings; fields left out keep their value.

    Use it to rotate a webhook's credentials, move it to a new URL, or switch it on or off for
    blast or triggered sends. An unknown id answers ``NotFound``. Sending the same settings
    again changes nothing, so the task is safe to retry.

    ITERABLE_UPDATE_WEBHOOK: POST /api/webhooks (no documented rate limit).

    Args:
        webhook_id: the webhook's id (see ``list_webhooks``).
        enabled: whether Iterable calls the webhook at all.
        headers: headers Iterable adds to each call, as ``key``/``value`` pairs; replaces the
            previous headers.
        auth_type: how Iterable authenticates: ``NoAuth``, ``Basic`` or ``OAuth2``.
        endpoint: the URL Iterable posts to; ``https://`` only.
        auth_token: the token or credentials for ``auth_type``; kept secret in logs.
        blast_send_enabled: whether the webhook is called for blast campaigns.
        triggered_send_enabled: whether the webhook is called for triggered campaigns.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The webhook as it is after the update.
    """
