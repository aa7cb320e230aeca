"""What a sandbox project holds, area by area: the public face for seeding and inspecting it.

Tests and demos seed a project (a user, a list, a running campaign) and read what a call left
behind through these names only; the handler modules behind them stay free to change. Each
accessor takes a ``Project`` (from ``Sandbox.add_project``) and returns that area's live state.
"""

from prefect_iterable.sandbox.handlers._shared import (
    User,
    UserList,
    identifier_hash,
    lists,
    messages,
    now_ms,
    record_message,
    templates,
    users,
)
from prefect_iterable.sandbox.handlers.campaigns import campaigns, experiments
from prefect_iterable.sandbox.handlers.catalogs import catalogs
from prefect_iterable.sandbox.handlers.embedded import events as embedded_events
from prefect_iterable.sandbox.handlers.embedded import user_messages
from prefect_iterable.sandbox.handlers.events import blocked_event_names, events
from prefect_iterable.sandbox.handlers.exports import (
    ExportSpec,
    advance,
    columns,
    export_settings,
    exports,
    generated_record,
    start_job,
)
from prefect_iterable.sandbox.handlers.journeys import journey_state
from prefect_iterable.sandbox.handlers.metadata import put_item, tables
from prefect_iterable.sandbox.handlers.sms import MAX_ATTEMPTS, issue_code
from prefect_iterable.sandbox.handlers.snippets import snippets
from prefect_iterable.sandbox.handlers.webhooks import webhooks
from prefect_iterable.sandbox.state import Project

__all__ = [
    "MAX_ATTEMPTS",
    "ExportSpec",
    "Project",
    "User",
    "UserList",
    "advance",
    "blocked_event_names",
    "campaigns",
    "catalogs",
    "columns",
    "embedded_events",
    "events",
    "experiments",
    "export_settings",
    "exports",
    "generated_record",
    "identifier_hash",
    "issue_code",
    "journey_state",
    "lists",
    "messages",
    "now_ms",
    "put_item",
    "record_message",
    "snippets",
    "start_job",
    "tables",
    "templates",
    "user_messages",
    "users",
    "webhooks",
]
