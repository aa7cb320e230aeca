"""Metadata tables: JSON documents by table (case-insensitive) and key (case-sensitive).

State: ``project.area("metadata", dict)`` maps a lower-cased table name to a ``Table``. Keys are
listed in name order, ``KEYS_PAGE_SIZE`` a page, continued by an opaque ``nextMarker``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from prefect_iterable.sandbox.handlers._base import Call, bad_params, handles, not_found, success
from prefect_iterable.sandbox.handlers._shared import now_ms
from prefect_iterable.sandbox.state import Project

#: Keys per page of GET /api/metadata/{table}; tests may lower it to page through few keys.
KEYS_PAGE_SIZE = 100
MAX_VALUE_BYTES = 30 * 1024


@dataclass
class Item:
    value: dict[str, Any]
    size: int
    last_modified: int = field(default_factory=now_ms)


@dataclass
class Table:
    name: str  # as first written
    items: dict[str, Item] = field(default_factory=dict)


def tables(project: Project) -> dict[str, Table]:
    return project.area("metadata", dict)


def put_item(project: Project, table: str, key: str, value: dict[str, Any]) -> Item:
    """Store ``value`` under ``table``/``key``, creating the table; the value's rules apply."""
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_VALUE_BYTES:
        raise bad_params(f"value is {size} bytes; at most {MAX_VALUE_BYTES} bytes are allowed")
    found = tables(project).setdefault(table.lower(), Table(name=table))
    item = found.items[key] = Item(value=value, size=size)
    return item


def _name(call: Call, wire: str) -> str:
    value = call.arg(wire)
    if not isinstance(value, str) or not value.strip():
        raise bad_params(f"{wire} must be a non-empty string")
    return value


def _table(call: Call) -> Table:
    name = _name(call, "table")
    found = tables(call.project).get(name.lower())
    if found is None:
        raise not_found(f"Table {name} not found")
    return found


def _marker(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _after(marker: str) -> str:
    try:
        return base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise bad_params(f"Invalid nextMarker: {marker!r}") from None


@handles("ITERABLE_LIST_METADATA_TABLES")
def list_metadata_tables(call: Call) -> dict[str, Any]:
    ordered = sorted(tables(call.project).items())
    return {"results": [{"name": table.name} for _, table in ordered]}


@handles("ITERABLE_LIST_METADATA_KEYS")
def list_metadata_keys(call: Call) -> dict[str, Any]:
    table = _table(call)
    keys = sorted(table.items)
    marker = call.arg("nextMarker")
    if marker:
        after = _after(marker)
        keys = [key for key in keys if key > after]
    page = keys[:KEYS_PAGE_SIZE]
    body: dict[str, Any] = {
        "results": [
            {
                "table": table.name,
                "key": key,
                "size": table.items[key].size,
                "lastModified": table.items[key].last_modified,
            }
            for key in page
        ]
    }
    if len(keys) > len(page):
        body["nextMarker"] = _marker(page[-1])
    return body


@handles("ITERABLE_REPLACE_METADATA_ITEM")
def replace_metadata_item(call: Call) -> dict[str, Any]:
    table = _name(call, "table")
    key = _name(call, "key")
    value = call.arg("value")
    if value is None:
        raise bad_params("missing required parameter(s): value")
    if not isinstance(value, dict):
        raise bad_params("value must be a JSON object")
    put_item(call.project, table, key, value)
    return success(f"Stored {key} in {table}")


@handles("ITERABLE_DELETE_METADATA_TABLE")
def delete_metadata_table(call: Call) -> dict[str, Any]:
    table = _table(call)
    del tables(call.project)[table.name.lower()]
    return success(f"Deleted table {table.name}")
