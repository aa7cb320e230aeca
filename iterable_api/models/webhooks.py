"""Request and response schemas for Iterable's system webhooks."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StringConstraints

from prefect_iterable.api.models._base import IterableModel, RequestModel

__all__ = ["HttpsUrl", "Webhook", "WebhookAuthType", "WebhookHeader", "WebhooksResponse"]

WebhookAuthType = Literal["NoAuth", "Basic", "OAuth2"]


def _check_https(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"Iterable calls only https:// webhook URLs, got {value!r}")
    return value


#: An absolute ``https://`` URL (Iterable refuses plain-HTTP webhook endpoints).
HttpsUrl = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_check_https)]


class WebhookHeader(RequestModel):
    """A header Iterable adds to each webhook call."""

    key: Annotated[str, StringConstraints(min_length=1, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
    value: str


class Webhook(IterableModel):
    """A system webhook: where Iterable posts message events, and for which sends."""

    id: int
    endpoint: str | None = None
    enabled: bool | None = None
    auth_type: str | None = Field(None, description="NoAuth, Basic or OAuth2.")
    blast_send_enabled: bool | None = Field(None, description="Called for blast campaigns.")
    triggered_send_enabled: bool | None = Field(None, description="Called for triggered campaigns.")
    channel_ids: list[Any] = Field(default_factory=list)
    message_type_ids: list[Any] = Field(default_factory=list)


class WebhooksResponse(IterableModel):
    webhooks: list[Webhook] = Field(default_factory=list)
