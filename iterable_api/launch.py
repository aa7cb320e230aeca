"""The Prefect-free parts of launching an email campaign: checks, recipient lookup, the preview.

``prefect_iterable.flows.campaign_launch`` orchestrates these; your own flows can use them too.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from prefect_iterable.api.client import Client
from prefect_iterable.api.errors import ForgottenUserError, UnknownEmailError
from prefect_iterable.api.types import Email

__all__ = [
    "Decision",
    "EmailTemplateSpec",
    "LaunchResult",
    "MAX_SCHEDULE_AHEAD",
    "PREVIEW_HTML_LIMIT",
    "check_send_at",
    "mask_email",
    "missing_recipients",
    "preview_markdown",
    "render_locally",
    "text_of",
]

#: Iterable schedules an existing campaign at most this far ahead (``campaigns/{id}/schedule``).
MAX_SCHEDULE_AHEAD = timedelta(days=7)
#: Characters of rendered HTML kept in the preview.
PREVIEW_HTML_LIMIT = 20_000

Decision = Literal["approved", "rejected", "timed-out", "not-asked"]


class EmailTemplateSpec(BaseModel):
    """An email template to create or update (upsert) by its client template id."""

    model_config = ConfigDict(extra="forbid")

    client_template_id: str = Field(
        min_length=1,
        max_length=255,
        description="Your stable id for this template; every upsert with it updates the same "
        "template.",
    )
    name: str = Field(min_length=1, description="The template's name in Iterable.")
    subject: str = Field(min_length=1, description="The email subject line.")
    html: str = Field(min_length=1, description="The email body as HTML (Handlebars allowed).")
    from_name: str = Field(min_length=1, description="The sender's display name.")
    from_email: Email = Field(description="The sender address; its domain must be verified.")
    reply_to_email: Email | None = Field(None, description="Where replies go.")
    plain_text: str | None = Field(None, description="The plain-text alternative body.")
    preheader_text: str | None = Field(None, description="The inbox preview line.")
    message_type_id: PositiveInt | None = Field(
        None, description="The message type (subscription category) of the campaign."
    )
    locale: str | None = Field(None, description="The locale of this content (default locale).")


class LaunchResult(BaseModel):
    """What the launch did; ids, counts and the decision, never the content or recipients."""

    campaign_name: str
    campaign_id: int | None = Field(description="None in a dry run that would create it.")
    template_id: int | None = Field(
        description="The campaign's own template (Iterable copies the source template into the "
        "campaign); in a dry run, the source template."
    )
    source_template_id: int | None = Field(
        None, description="The template given or upserted, that the campaign was created from."
    )
    state: str = Field(description="The campaign's state at the end, or NotCreated.")
    created: bool = Field(description="Whether this run created the campaign.")
    proofs_sent: int = 0
    proofs_skipped: int = Field(0, description="Proofs already sent by an earlier run.")
    proofs_unknown: int = Field(
        0, description="Proofs whose request failed after it may have been received; not repeated."
    )
    decision: Decision
    comment: str = ""
    send_at: datetime | None = None
    dry_run: bool = False
    message: str = ""


def check_send_at(send_at: datetime | None) -> datetime | None:
    """``send_at`` in UTC (a time without zone is UTC); refuse the past and > 7 days ahead."""
    if send_at is None:
        return None
    value = (
        send_at.replace(tzinfo=timezone.utc)
        if send_at.tzinfo is None
        else send_at.astimezone(timezone.utc)
    )
    now = datetime.now(timezone.utc)
    if value <= now:
        raise ValueError(f"send_at: {value.isoformat()} is in the past; give a future time or none")
    if value > now + MAX_SCHEDULE_AHEAD:
        raise ValueError(
            f"send_at: {value.isoformat()} is more than 7 days ahead; Iterable schedules an "
            "existing campaign at most 7 days ahead"
        )
    return value


def mask_email(email: str) -> str:
    """``jane@example.com`` → ``j***@example.com``: enough for a person to recognise, no more."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}"


def missing_recipients(client: Client, emails: Iterable[str]) -> list[str]:
    """The addresses that are not (or no longer) users of the project, in the order given.

    Iterable sends a proof only to an existing user. The catalog's one read that names a user by
    email and refuses an unknown one (400 ``UnknownEmailError``) is the user's event export;
    only its status is read, the stream is closed before its body.
    """
    missing = []
    for email in emails:
        try:
            with client.stream("ITERABLE_EXPORT_USER_EVENTS", email=email):
                pass
        except (UnknownEmailError, ForgottenUserError):
            missing.append(email)
    return missing


def render_locally(text: str, data: dict[str, Any]) -> str:
    """``{{field}}`` merge tags filled from ``data`` (a dry run cannot ask Iterable to render)."""

    def fill(match: re.Match[str]) -> str:
        value: Any = data
        for part in match.group(1).split("."):
            if not isinstance(value, dict) or part not in value:
                return match.group(0)
            value = value[part]
        return html_lib.escape(str(value))

    return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", fill, text)


def text_of(rendered: str) -> str:
    """The readable text of rendered HTML, one block per line."""
    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", rendered)
    body = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</h\d>|</li>|</tr>", "\n", body)
    body = html_lib.unescape(re.sub(r"<[^>]+>", " ", body))
    lines = (re.sub(r"[ \t]+", " ", line).strip() for line in body.splitlines())
    return "\n".join(line for line in lines if line)


def preview_markdown(
    settings: list[tuple[str, str]], rendered: str, rendered_by: str, *, dry_run: bool
) -> str:
    """The campaign preview as markdown: a settings table, the text, the HTML (cut if long)."""
    table = "\n".join(f"| {k} | {v.replace('|', chr(92) + '|')} |" for k, v in settings)
    shown = rendered[:PREVIEW_HTML_LIMIT]
    cut = "" if len(rendered) <= PREVIEW_HTML_LIMIT else "\n<!-- … cut -->"
    title = "Dry run: campaign preview" if dry_run else "Campaign preview: awaiting approval"
    return (
        f"# {title}\n\n| Setting | Value |\n|---|---|\n{table}\n\n"
        f"## Rendered text\n\n_{rendered_by}_\n\n```text\n{text_of(rendered)[:5000]}\n```\n\n"
        f"## Rendered HTML\n\n```html\n{shown}{cut}\n```\n"
    )
