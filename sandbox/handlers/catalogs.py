"""Catalogs: named collections of items, with typed fields.

State: ``project.area("catalogs", dict)`` maps the lower-cased catalog name (Iterable compares
names case-insensitively) to a ``Catalog``. Item ids are case-sensitive.

Iterable applies item writes asynchronously (it answers 202 and the write lands shortly after);
the sandbox applies them before answering, so a following GET already sees them. The GETs wrap
their payload in the envelope's ``params``, as Iterable does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from prefect_iterable.sandbox.handlers._base import (
    ApiFailure,
    Call,
    Page,
    Reply,
    bad_params,
    handles,
    not_found,
    paginate,
    success,
)
from prefect_iterable.sandbox.handlers._shared import now_ms
from prefect_iterable.sandbox.state import Project

_NAME = re.compile(r"^[A-Za-z0-9-]{1,255}$")
MAX_BULK_ITEMS = 1000
MAX_VALUE_BYTES = 30 * 1024
FIELD_TYPES = ("string", "boolean", "date", "geo_location", "long", "double", "object")
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 10, 1000


@dataclass
class Item:
    value: dict[str, Any]
    last_modified: int = field(default_factory=now_ms)

    def size(self) -> int:
        return len(_dumps(self.value))


@dataclass
class Catalog:
    id: int
    name: str
    created_at: int = field(default_factory=now_ms)
    items: dict[str, Item] = field(default_factory=dict)
    mappings: dict[str, str] = field(default_factory=dict)  # dotted field -> type

    def item_json(self, item_id: str, item: Item) -> dict[str, Any]:
        modified = datetime.fromtimestamp(item.last_modified / 1000, timezone.utc)
        return {
            "catalogName": self.name,
            "itemId": item_id,
            "lastModified": modified.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "size": item.size(),
            "value": item.value,
        }


def catalogs(project: Project) -> dict[str, Catalog]:
    return project.area("catalogs", dict)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise bad_params(
            f"Invalid catalog name {name!r}: use letters, digits and dashes, at most 255"
        )
    return name


def _require_catalog(call: Call) -> Catalog:
    name = _check_name(call.arg("catalogName"))
    found = catalogs(call.project).get(name.lower())
    if found is None:
        raise not_found(f"Catalog {name} not found")
    return found


def _check_item(item_id: Any, value: Any, what: str = "value") -> dict[str, Any]:
    if not isinstance(item_id, str) or not _NAME.match(item_id):
        raise bad_params(
            f"Invalid item id {item_id!r}: use letters, digits and dashes, at most 255"
        )
    if not isinstance(value, dict):
        raise bad_params(f"Item {item_id}: {what} must be a JSON object")
    if len(_dumps(value)) > MAX_VALUE_BYTES:
        raise bad_params(f"Item {item_id}: {what} exceeds {MAX_VALUE_BYTES} bytes")
    names = [name.rsplit("\x00", 1)[-1] for name in _field_paths(value)]
    if any(not name for name in names):
        raise bad_params(f"Item {item_id}: field names may not be empty")
    if any("." in name for name in names):
        raise bad_params(f"Item {item_id}: field names may not contain periods")
    return value


def _field_paths(value: Any, prefix: str = "") -> list[str]:
    """Every field of a value as a path (parts joined by NUL, so periods stay visible)."""
    paths: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            paths.append(prefix + key)
            paths.extend(_field_paths(child, prefix + key + "\x00"))
    elif isinstance(value, list):
        for child in value:
            paths.extend(_field_paths(child, prefix))
    return paths


def _page(call: Call, items: list[Any]) -> Page:
    return paginate(call, items, default_size=DEFAULT_PAGE_SIZE, max_size=MAX_PAGE_SIZE)


# ---- catalogs ------------------------------------------------------------------------------


@handles("ITERABLE_LIST_CATALOGS")
def list_catalogs(call: Call) -> dict[str, Any]:
    page = _page(call, sorted(catalogs(call.project).values(), key=lambda c: c.id))
    return success(
        catalogNames=[{"name": c.name} for c in page.items],
        totalCatalogsCount=page.total,
        **page.links(),
    )


@handles("ITERABLE_CREATE_CATALOG")
def create_catalog(call: Call) -> Reply:
    name = _check_name(call.arg("catalogName"))
    store = catalogs(call.project)
    if name.lower() in store:
        raise bad_params(f"Catalog {store[name.lower()].name} already exists")
    catalog = store[name.lower()] = Catalog(id=call.project.next_id(), name=name)
    return Reply(success(id=catalog.id, name=catalog.name, url=f"/api/catalogs/{quote(name)}"), 201)


@handles("ITERABLE_DELETE_CATALOG")
def delete_catalog(call: Call) -> dict[str, Any]:
    catalog = _require_catalog(call)
    del catalogs(call.project)[catalog.name.lower()]
    return success(f"Catalog {catalog.name} deleted")


# ---- field mappings ------------------------------------------------------------------------


def _flatten_definitions(definitions: Any, prefix: str = "") -> list[tuple[str, str]]:
    if not isinstance(definitions, list):
        raise bad_params("mappingsUpdates must be a list of {fieldName, fieldType}")
    flat: list[tuple[str, str]] = []
    for definition in definitions:
        if not isinstance(definition, dict):
            raise bad_params("each mapping must be an object with fieldName and fieldType")
        name, kind = definition.get("fieldName"), definition.get("fieldType")
        if not isinstance(name, str) or not name or "." in name:
            raise bad_params(f"Invalid field name {name!r}")
        if kind not in FIELD_TYPES:
            raise bad_params(f"Invalid field type {kind!r} for {name}; one of {FIELD_TYPES}")
        flat.append((prefix + name, kind))
        children = definition.get("children")
        if children:
            if kind != "object":
                raise bad_params(f"Only object fields may have children ({name})")
            flat.extend(_flatten_definitions(children, prefix + name + "."))
    return flat


@handles("ITERABLE_GET_CATALOG_FIELD_MAPPINGS")
def get_field_mappings(call: Call) -> dict[str, Any]:
    catalog = _require_catalog(call)
    seen: dict[str, None] = {}
    for item in catalog.items.values():
        for path in _field_paths(item.value):
            seen.setdefault(path.replace("\x00", "."))
    undefined = [f for f in seen if f not in catalog.mappings]
    return success(definedMappings=dict(catalog.mappings), undefinedFields=undefined)


@handles("ITERABLE_UPDATE_CATALOG_FIELD_MAPPINGS")
def update_field_mappings(call: Call) -> dict[str, Any]:
    catalog = _require_catalog(call)
    updates = _flatten_definitions(call.arg("mappingsUpdates"))
    for name, kind in updates:
        current = catalog.mappings.get(name)
        if current is not None and current != kind:
            raise bad_params(f"Field {name} already has type {current}; a type cannot change")
    catalog.mappings.update(updates)
    return success(f"Updated {len(updates)} field mapping(s) of {catalog.name}")


# ---- items ---------------------------------------------------------------------------------


@handles("ITERABLE_CREATE_CATALOG_ITEMS")
def create_items(call: Call) -> Reply:
    catalog = _require_catalog(call)
    documents = call.arg("documents")
    if not isinstance(documents, dict) or not documents:
        raise bad_params("documents must be a non-empty map of item id to value")
    if len(documents) > MAX_BULK_ITEMS:
        raise ApiFailure(400, "BatchTooLarge", f"At most {MAX_BULK_ITEMS} documents per request")
    checked = {item_id: _check_item(item_id, value) for item_id, value in documents.items()}
    merge = call.bool_arg("replaceUploadedFieldsOnly")
    for item_id, value in checked.items():
        existing = catalog.items.get(item_id)
        if merge and existing is not None:
            existing.value = {**existing.value, **value}
            existing.last_modified = now_ms()
        else:
            catalog.items[item_id] = Item(dict(value))
    return Reply(
        success(f"Request to bulk-upload documents into {catalog.name} processed successfully"),
        202,
    )


@handles("ITERABLE_DELETE_CATALOG_ITEMS")
def delete_items(call: Call) -> Reply:
    catalog = _require_catalog(call)
    item_ids = call.arg("itemIds")
    if not isinstance(item_ids, list) or not all(isinstance(i, str) for i in item_ids):
        raise bad_params("itemIds must be a list of item ids")
    for item_id in item_ids:
        catalog.items.pop(item_id, None)
    return Reply(
        success(f"Request to bulk-delete items from {catalog.name} processed successfully"),
        202,
    )


_SORTABLE = {"string", "boolean", "date", "long", "double"}


def _sort_key(value: Any) -> tuple[int, Any]:
    # Items without the field go last whatever the direction; mixed types sort by type first.
    if value is None:
        return (3, 0)
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


def _lookup(value: dict[str, Any], dotted: str) -> Any:
    current: Any = value
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


@handles("ITERABLE_LIST_CATALOG_ITEMS")
def list_items(call: Call) -> dict[str, Any]:
    catalog = _require_catalog(call)
    order_by = call.arg("orderBy")
    ascending_given = call.arg("sortAscending") is not None
    ascending = call.bool_arg("sortAscending", False)
    entries = list(catalog.items.items())
    if order_by:
        if ascending_given and catalog.mappings.get(order_by) not in _SORTABLE:
            raise bad_params(
                f"sortAscending needs a field with a defined type; {order_by} has none"
            )
        present = [e for e in entries if _lookup(e[1].value, order_by) is not None]
        missing = [e for e in entries if _lookup(e[1].value, order_by) is None]
        present.sort(key=lambda e: _sort_key(_lookup(e[1].value, order_by)), reverse=not ascending)
        entries = present + missing
    page = _page(call, entries)
    return success(
        catalogItemsWithProperties=[catalog.item_json(i, item) for i, item in page.items],
        totalItemsCount=page.total,
        **page.links(),
    )


def _item_id(call: Call) -> str:
    item_id = call.arg("itemId")
    if not isinstance(item_id, str) or not _NAME.match(item_id):
        raise bad_params(f"Invalid item id {item_id!r}")
    return item_id


@handles("ITERABLE_GET_CATALOG_ITEM")
def get_item(call: Call) -> dict[str, Any]:
    catalog = _require_catalog(call)
    item_id = _item_id(call)
    item = catalog.items.get(item_id)
    if item is None:
        raise not_found(f"No catalog item {item_id} in {catalog.name}")
    return success(**catalog.item_json(item_id, item))


@handles("ITERABLE_DELETE_CATALOG_ITEM")
def delete_item(call: Call) -> Reply:
    catalog = _require_catalog(call)
    item_id = _item_id(call)
    if catalog.items.pop(item_id, None) is None:
        raise not_found(f"No catalog item {item_id} in {catalog.name}")
    return Reply(success(f"Request to delete item {item_id} received"), 202)


@handles("ITERABLE_REPLACE_CATALOG_ITEM")
def replace_item(call: Call) -> Reply:
    catalog = _require_catalog(call)
    item_id = _item_id(call)
    value = _check_item(item_id, call.arg("value"))
    catalog.items[item_id] = Item(dict(value))
    return Reply(success(f"Request to replace item {item_id} received"), 202)


@handles("ITERABLE_UPDATE_CATALOG_ITEM")
def update_item(call: Call) -> Reply:
    catalog = _require_catalog(call)
    item_id = _item_id(call)
    update = _check_item(item_id, call.arg("update"), "update")
    existing = catalog.items.get(item_id)
    if existing is None:
        catalog.items[item_id] = Item(dict(update))
    else:
        existing.value = {**existing.value, **update}
        existing.last_modified = now_ms()
    return Reply(success(f"Request to update item {item_id} received"), 202)
