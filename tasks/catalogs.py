"""Tasks for Iterable's catalogs: named collections of items (products, stores, content) that
templates look up by id.

Names and ids are checked before anything is sent: catalog names and item ids are letters, digits
and dashes (at most 255 characters; names are case-insensitive, ids case-sensitive), item values
are at most 30 KB serialized and their field names have no periods, and a bulk write carries at
most 1000 items. Item writes are asynchronous at Iterable (202): confirm with ``get_catalog_item``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from prefect_iterable.api.models import ApiResponse
from prefect_iterable.api.models.catalogs import (
    CatalogFieldDefinition,
    CatalogFieldMappings,
    CatalogItem,
    CatalogItemsPage,
    CatalogList,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._core import iterable_task, resolve_credentials
from prefect_iterable.tasks._types import CatalogName

__all__ = [
    "CatalogDocuments",
    "CatalogItemId",
    "CatalogItemValue",
    "MAX_BULK_ITEMS",
    "MAX_VALUE_BYTES",
    "create_catalog",
    "create_catalog_items",
    "delete_catalog",
    "delete_catalog_item",
    "delete_catalog_items",
    "get_catalog_field_mappings",
    "get_catalog_item",
    "iter_catalog_items",
    "iter_catalogs",
    "list_catalog_items",
    "list_catalogs",
    "replace_catalog_item",
    "update_catalog_field_mappings",
    "update_catalog_item",
]

#: Items in one bulk create request.
MAX_BULK_ITEMS = 1000
#: Serialized size of one item value.
MAX_VALUE_BYTES = 30 * 1024


def _field_names(value: Any) -> Iterator[str]:
    """Every field name in a value, at any depth (inside lists too)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield str(key)
            yield from _field_names(child)
    elif isinstance(value, list):
        for child in value:
            yield from _field_names(child)


def _check_item_value(value: dict[str, Any]) -> dict[str, Any]:
    # Iterable reads periods in field names as nesting, so it refuses them (at any depth).
    names = list(_field_names(value))
    if any(not name for name in names):
        raise ValueError("field names may not be empty")
    bad = [name for name in names if "." in name]
    if bad:
        raise ValueError(f"field names may not contain periods: {', '.join(bad[:5])}")
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        size = len(text.encode())
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"an item value must be plain JSON: {exc}") from None
    if size > MAX_VALUE_BYTES:
        raise ValueError(f"an item value is at most {MAX_VALUE_BYTES} bytes serialized, got {size}")
    return value


#: A catalog item id: letters, digits and dashes, at most 255 characters, case-sensitive.
CatalogItemId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,255}$")]
#: An item's fields: at most 30 KB serialized, no periods in field names.
CatalogItemValue = Annotated[dict[str, Any], AfterValidator(_check_item_value)]
#: Item id to value, at most 1000 items per request.
CatalogDocuments = Annotated[
    dict[CatalogItemId, CatalogItemValue], Field(min_length=1, max_length=MAX_BULK_ITEMS)
]
_PageSize = Annotated[int, Field(ge=1, le=1000)]


@iterable_task("ITERABLE_LIST_CATALOGS")
def list_catalogs(
    page: Annotated[int, Field(ge=1)] | None = None,
    page_size: Annotated[int, Field(ge=1, le=1000)] | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> CatalogList:
    """List the project's catalogs by name, one page at a time.

    Use it to check which catalogs exist before reading or writing items. Iterable answers one
    page (10 catalogs by default) with the total count; ``iter_catalogs`` walks every page.

    ITERABLE_LIST_CATALOGS: GET /api/catalogs (100 requests/s per API key).

    Args:
        page: the page to read, from 1.
        page_size: catalogs per page, 1 to 1000 (Iterable's default is 10).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The catalog names (``.names``), the total count and the next page's URL, if any.
    """


@iterable_task("ITERABLE_CREATE_CATALOG", run_name="create-catalog-{catalog_name}")
def create_catalog(
    catalog_name: CatalogName, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Create an empty catalog.

    Names are unique per project and compared case-insensitively, so creating ``Products`` when
    ``products`` exists fails with ``BadParams``.

    ITERABLE_CREATE_CATALOG: POST /api/catalogs/{catalogName} (no documented rate limit).

    Args:
        catalog_name: letters, digits and dashes, at most 255 characters.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope; ``params`` holds the new catalog's ``id``, ``name`` and ``url``.
    """


@iterable_task("ITERABLE_DELETE_CATALOG", run_name="delete-catalog-{catalog_name}")
def delete_catalog(
    catalog_name: CatalogName, *, credentials: IterableCredentials | None = None
) -> ApiResponse:
    """Delete a catalog with all its items; collections built on it are deleted too.

    Irreversible. Needs a credentials block with the ``delete`` permission.

    ITERABLE_DELETE_CATALOG: DELETE /api/catalogs/{catalogName} (no documented rate limit).

    Args:
        catalog_name: the catalog to delete (case-insensitive).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task(
    "ITERABLE_GET_CATALOG_FIELD_MAPPINGS", run_name="get-catalog-field-mappings-{catalog_name}"
)
def get_catalog_field_mappings(
    catalog_name: CatalogName, *, credentials: IterableCredentials | None = None
) -> CatalogFieldMappings:
    """Read a catalog's schema: the type of each typed field and the fields not yet typed.

    Use it before ``update_catalog_field_mappings`` (a type, once set, cannot change) or before
    sorting items with ``sort_ascending`` (which needs a typed field).

    ITERABLE_GET_CATALOG_FIELD_MAPPINGS: GET /api/catalogs/{catalogName}/fieldMappings (no
    documented rate limit).

    Args:
        catalog_name: the catalog (case-insensitive).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        ``defined_mappings`` (field to type, nested fields dotted) and ``undefined_fields``.
    """


@iterable_task(
    "ITERABLE_UPDATE_CATALOG_FIELD_MAPPINGS",
    run_name="update-catalog-field-mappings-{catalog_name}",
)
def update_catalog_field_mappings(
    catalog_name: CatalogName,
    mappings_updates: Annotated[list[CatalogFieldDefinition], Field(min_length=1)],
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Give catalog fields their data types, so they can be searched, sorted and filtered.

    Setting a type a field already has is a no-op, so this is safe to repeat; changing a field's
    type is refused with ``BadParams``.

    ITERABLE_UPDATE_CATALOG_FIELD_MAPPINGS: PUT /api/catalogs/{catalogName}/fieldMappings (no
    documented rate limit).

    Args:
        catalog_name: the catalog (case-insensitive).
        mappings_updates: at least one ``CatalogFieldDefinition`` (field name without periods,
            a type among string, boolean, date, geo_location, long, double and object, and for
            objects optional ``children``).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's success envelope.
    """


@iterable_task("ITERABLE_CREATE_CATALOG_ITEMS", run_name="create-catalog-items-{catalog_name}")
def create_catalog_items(
    catalog_name: CatalogName,
    documents: CatalogDocuments,
    replace_uploaded_fields_only: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Create or overwrite up to 1000 catalog items in one request.

    Iterable accepts the request (202) and applies it asynchronously; confirm with
    ``get_catalog_item``. An existing item is replaced whole unless
    ``replace_uploaded_fields_only`` is true, which replaces only the fields uploaded. Split
    larger uploads into batches of at most 1000 items.

    ITERABLE_CREATE_CATALOG_ITEMS: POST /api/catalogs/{catalogName}/items (100 requests/s per
    API key).

    Args:
        catalog_name: the catalog (case-insensitive); it must exist.
        documents: item id to item value; 1 to 1000 items, ids of letters, digits and dashes
            (at most 255 characters), each value at most 30 KB serialized with no periods in
            field names.
        replace_uploaded_fields_only: merge the uploaded fields into existing items instead of
            replacing them (Iterable's default is to replace).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope acknowledging the upload.
    """


@iterable_task("ITERABLE_DELETE_CATALOG_ITEMS", run_name="delete-catalog-items-{catalog_name}")
def delete_catalog_items(
    catalog_name: CatalogName,
    item_ids: Annotated[list[CatalogItemId], Field(min_length=1)],
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Delete several catalog items by id, asynchronously.

    Irreversible; Iterable accepts the request (202) before the items are gone. Ids that do
    not exist are ignored. Needs the ``delete`` permission.

    ITERABLE_DELETE_CATALOG_ITEMS: DELETE /api/catalogs/{catalogName}/items with a JSON body
    (no documented rate limit).

    Args:
        catalog_name: the catalog (case-insensitive).
        item_ids: at least one item id (letters, digits and dashes, case-sensitive).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope acknowledging the deletion.
    """


@iterable_task("ITERABLE_LIST_CATALOG_ITEMS", run_name="list-catalog-items-{catalog_name}")
def list_catalog_items(
    catalog_name: CatalogName,
    page: Annotated[int, Field(ge=1)] | None = None,
    page_size: _PageSize | None = None,
    order_by: Annotated[str, StringConstraints(min_length=1)] | None = None,
    sort_ascending: bool | None = None,
    *,
    credentials: IterableCredentials | None = None,
) -> CatalogItemsPage:
    """Read one page of a catalog's items with their properties.

    For every item, use ``iter_catalog_items``, which walks the pages. ``sort_ascending``
    works only with an ``order_by`` field that has a type (see ``get_catalog_field_mappings``).

    ITERABLE_LIST_CATALOG_ITEMS: GET /api/catalogs/{catalogName}/items (100 requests/s per API
    key).

    Args:
        catalog_name: the catalog (case-insensitive).
        page: 1-based page number (Iterable's default 1).
        page_size: items per page, 1 to 1000 (Iterable's default 10).
        order_by: the field to order by.
        sort_ascending: ascending order (Iterable's default is descending).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The page's items, the catalog's item count and the next page's URL, if any.
    """


@iterable_task(
    "ITERABLE_DELETE_CATALOG_ITEM", run_name="delete-catalog-item-{catalog_name}-{item_id}"
)
def delete_catalog_item(
    catalog_name: CatalogName,
    item_id: CatalogItemId,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Delete one catalog item, asynchronously.

    Irreversible; confirm with ``get_catalog_item`` (which then answers ``NotFound``). A missing
    item or catalog raises ``NotFound``. Needs the ``delete`` permission.

    ITERABLE_DELETE_CATALOG_ITEM: DELETE /api/catalogs/{catalogName}/items/{itemId} (no
    documented rate limit).

    Args:
        catalog_name: the catalog (case-insensitive).
        item_id: the item (letters, digits and dashes, case-sensitive).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope acknowledging the deletion.
    """


@iterable_task("ITERABLE_GET_CATALOG_ITEM", run_name="get-catalog-item-{catalog_name}-{item_id}")
def get_catalog_item(
    catalog_name: CatalogName,
    item_id: CatalogItemId,
    *,
    credentials: IterableCredentials | None = None,
) -> CatalogItem:
    """Read one catalog item: its value, size and last modification time.

    Use it to confirm an asynchronous item write. A missing item raises ``NotFound``.

    ITERABLE_GET_CATALOG_ITEM: GET /api/catalogs/{catalogName}/items/{itemId} (no documented
    rate limit).

    Args:
        catalog_name: the catalog (case-insensitive).
        item_id: the item (letters, digits and dashes, case-sensitive).
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        The item with its properties.
    """


@iterable_task(
    "ITERABLE_REPLACE_CATALOG_ITEM", run_name="replace-catalog-item-{catalog_name}-{item_id}"
)
def replace_catalog_item(
    catalog_name: CatalogName,
    item_id: CatalogItemId,
    value: CatalogItemValue,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Create a catalog item, or replace it whole: fields left out of ``value`` are dropped.

    Asynchronous at Iterable (202); confirm with ``get_catalog_item``. Safe to repeat.

    ITERABLE_REPLACE_CATALOG_ITEM: PUT /api/catalogs/{catalogName}/items/{itemId} (1000
    requests/s per API key).

    Args:
        catalog_name: the catalog (case-insensitive); it must exist.
        item_id: the item (letters, digits and dashes, case-sensitive).
        value: the item's fields, at most 30 KB serialized, no periods in field names.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope acknowledging the write.
    """


@iterable_task(
    "ITERABLE_UPDATE_CATALOG_ITEM", run_name="update-catalog-item-{catalog_name}-{item_id}"
)
def update_catalog_item(
    catalog_name: CatalogName,
    item_id: CatalogItemId,
    update: CatalogItemValue,
    *,
    credentials: IterableCredentials | None = None,
) -> ApiResponse:
    """Create a catalog item, or update the given fields of it, keeping the others.

    Asynchronous at Iterable (202); confirm with ``get_catalog_item``.

    ITERABLE_UPDATE_CATALOG_ITEM: PATCH /api/catalogs/{catalogName}/items/{itemId} (no
    documented rate limit).

    Args:
        catalog_name: the catalog (case-insensitive); it must exist.
        item_id: the item (letters, digits and dashes, case-sensitive).
        update: the fields to set, at most 30 KB serialized, no periods in field names.
        credentials: the Iterable credentials block; when omitted, ``ITERABLE_*`` environment
            variables.

    Returns:
        Iterable's envelope acknowledging the write.
    """


def iter_catalogs(
    credentials: IterableCredentials | None = None, *, page_size: int = 100
) -> Iterator[str]:
    """Every catalog name of the project, page by page (always sending ``page`` and ``pageSize``)."""
    client = resolve_credentials(credentials).get_client()
    page = 1
    while True:
        result = CatalogList.model_validate(
            client.call("ITERABLE_LIST_CATALOGS", page=page, page_size=page_size)
        )
        yield from result.names
        if len(result.catalog_names) < page_size or not result.next_page_url:
            return
        page += 1


def iter_catalog_items(
    catalog_name: str,
    credentials: IterableCredentials | None = None,
    *,
    page_size: int = 100,
    order_by: str | None = None,
    sort_ascending: bool | None = None,
) -> Iterator[CatalogItem]:
    """Every item of a catalog, page by page (always sending ``page`` and ``pageSize``).

    Stops at a short page or one without ``nextPageUrl``. Items written while the walk runs
    may be seen twice or not at all, as with any page-numbered listing.
    """
    client = resolve_credentials(credentials).get_client()
    page = 1
    while True:
        raw = client.call(
            "ITERABLE_LIST_CATALOG_ITEMS",
            catalog_name=catalog_name,
            page=page,
            page_size=page_size,
            order_by=order_by,
            sort_ascending=sort_ascending,
        )
        result = CatalogItemsPage.model_validate(raw)
        yield from result.catalog_items_with_properties
        if len(result.catalog_items_with_properties) < page_size or not result.next_page_url:
            return
        page += 1
