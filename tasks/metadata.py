"""Tasks for Iterable's metadata tables: small JSON documents by table and key.

Templates read these documents at render time, so they suit reference data (store details, feature
flags) that changes more slowly than user profiles.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import TypeAdapter, ValidationError

from prefect_iterable.api.errors import InputValidationError
from prefect_iterable.api.models import ApiResponse
from prefect_iterable.api.models.metadata import (
    MetadataKey,
    MetadataKeysPage,
    MetadataName,
    MetadataTablesResponse,
    MetadataValue,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task, resolve_credentials

__all__ = [
    "delete_metadata_table",
    "iter_metadata_keys",
    "list_metadata_keys",
    "list_metadata_tables",
    "replace_metadata_item",
]

_TABLE = TypeAdapter(MetadataName)


@iterable_task("ITERABLE_LIST_METADATA_TABLES")
def list_metadata_tables(
    *, credentials: IterableCredentials | None = None
) -> MetadataTablesResponse:
    """List the project's metadata tables.

    Use it to see which tables exist before reading or cleaning them up. The answer is not
    paged.

    ITERABLE_LIST_METADATA_TABLES: GET /api/metadata (no documented rate limit).

    Args:
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The tables, each with its name.
    """


@iterable_task("ITERABLE_DELETE_METADATA_TABLE", run_name="delete-metadata-table-{table}")
def delete_metadata_table(
    table: MetadataName, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Delete a metadata table with every key in it.

    Use it to drop reference data you no longer use. Iterable deletes asynchronously: a success
    means the request was accepted, and ``list_metadata_tables`` confirms when it is done. A
    table that does not exist answers ``NotFound``. Deletion cannot be undone.

    ITERABLE_DELETE_METADATA_TABLE: DELETE /api/metadata/{table} (no documented rate limit).

    Args:
        table: the table's name (case-insensitive), non-empty.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_LIST_METADATA_KEYS", run_name="list-metadata-keys-{table}")
def list_metadata_keys(
    table: MetadataName,
    next_marker: str | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> MetadataKeysPage:
    """List one page of the keys in a metadata table.

    Use it to see what a table holds; pass the ``next_marker`` of one page to get the next, or
    use ``iter_metadata_keys`` to walk them all. A table that does not exist answers
    ``NotFound``.

    ITERABLE_LIST_METADATA_KEYS: GET /api/metadata/{table} (no documented rate limit).

    Args:
        table: the table's name (case-insensitive), non-empty.
        next_marker: where to continue: the ``next_marker`` of the previous page; leave out for
            the first page.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The page's keys (each with its size and last change) and the marker of the next page,
        or ``None`` on the last page.
    """


@iterable_task("ITERABLE_REPLACE_METADATA_ITEM", run_name="replace-metadata-item-{table}")
def replace_metadata_item(
    table: MetadataName,
    key: MetadataName,
    value: MetadataValue,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Create or replace the JSON document stored under a key, creating the table if needed.

    Use it to publish reference data that templates look up. The value replaces any previous one
    as a whole, so the task is safe to retry. Iterable stores it asynchronously: it may take a
    moment to show up in ``list_metadata_keys``.

    ITERABLE_REPLACE_METADATA_ITEM: PUT /api/metadata/{table}/{key} (no documented rate limit).

    Args:
        table: the table's name (case-insensitive), non-empty.
        key: the key (case-sensitive), non-empty.
        value: the document, a JSON object of at most 30 KB once serialised.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


def iter_metadata_keys(
    table: str, *, credentials: IterableCredentials | None = None
) -> Iterator[MetadataKey]:
    """Every key in a metadata table, following ``nextMarker`` from page to page.

    Pages are fetched as the iterator is consumed. Raises ``InputValidationError`` for an empty
    table name before any request, and ``NotFound`` when the table does not exist.
    """
    try:
        table = _TABLE.validate_python(table)
    except ValidationError as exc:
        errors = [("table", e["msg"]) for e in exc.errors()]
        raise InputValidationError("ITERABLE_LIST_METADATA_KEYS", errors) from None
    client = resolve_credentials(credentials).get_client()
    marker: str | None = None
    seen: set[str] = set()
    while True:
        page = MetadataKeysPage.model_validate(
            client.call("ITERABLE_LIST_METADATA_KEYS", table=table, next_marker=marker)
        )
        yield from page.results
        marker = page.next_marker
        # A marker seen before would loop forever: stop rather than trust it.
        if not marker or not page.results or marker in seen:
            return
        seen.add(marker)
