"""Request and response schemas for Iterable's metadata tables (small JSON documents by key)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from prefect_iterable.api.models._base import IterableModel
from prefect_iterable.api.types import OneLine

__all__ = [
    "METADATA_VALUE_MAX_BYTES",
    "MetadataKey",
    "MetadataKeysPage",
    "MetadataName",
    "MetadataTable",
    "MetadataTablesResponse",
    "MetadataValue",
]

#: Iterable's cap on one metadata value, serialised as JSON.
METADATA_VALUE_MAX_BYTES = 30 * 1024


def _check_value_size(value: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"not a JSON document: {exc}") from None
    if size > METADATA_VALUE_MAX_BYTES:
        raise ValueError(f"at most {METADATA_VALUE_MAX_BYTES} bytes as JSON, got {size}")
    return value


#: A table or key name: non-empty, one line, one path segment.
MetadataName = Annotated[
    str, StringConstraints(min_length=1, pattern=r"^[^/\s](?:[^/]*[^/\s])?$"), OneLine
]

#: A metadata document: a JSON object of at most 30 KB.
MetadataValue = Annotated[dict[str, Any], AfterValidator(_check_value_size)]


class MetadataTable(IterableModel):
    name: str


class MetadataTablesResponse(IterableModel):
    results: list[MetadataTable] = Field(default_factory=list)


class MetadataKey(IterableModel):
    """A key in a metadata table, with its value's size and last change."""

    table: str
    key: str
    size: int | None = Field(None, description="The value's size in bytes.")
    last_modified: int | None = Field(None, description="Last change, epoch milliseconds.")


class MetadataKeysPage(IterableModel):
    """One page of a table's keys; ``next_marker`` fetches the next page, if any."""

    results: list[MetadataKey] = Field(default_factory=list)
    next_marker: str | None = None
