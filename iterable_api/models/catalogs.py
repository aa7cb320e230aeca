"""Request and response schemas for Iterable's catalog actions.

Iterable wraps the answers of the catalog GETs in its envelope, ``{msg, code, params: {...}}``
(Iterable's own TypeScript client unwraps them the same way); the response models here accept
either the wrapped or the bare object, so callers always get the typed payload.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from prefect_iterable.api.models._base import IterableModel, RequestModel

__all__ = [
    "CATALOG_FIELD_TYPES",
    "CatalogFieldDefinition",
    "CatalogFieldMappings",
    "CatalogItem",
    "CatalogItemsPage",
    "CatalogList",
    "CatalogNameEntry",
    "CatalogFieldType",
]

#: The data types a catalog field can be given; once set, a field's type cannot change.
CatalogFieldType = Literal["string", "boolean", "date", "geo_location", "long", "double", "object"]
CATALOG_FIELD_TYPES: tuple[str, ...] = CatalogFieldType.__args__  # type: ignore[attr-defined]


def _unwrap_params(data: Any) -> Any:
    """The payload of ``{msg, code, params}``, or ``data`` itself when it is not wrapped."""
    if isinstance(data, dict) and "code" in data and isinstance(data.get("params"), dict):
        return data["params"]
    return data


class _Wrapped(IterableModel):
    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        return _unwrap_params(data)


class CatalogNameEntry(IterableModel):
    """One catalog, as the catalog list names it."""

    name: str


class CatalogList(_Wrapped):
    """A page of the project's catalogs (``GetCatalogsResponse``)."""

    catalog_names: list[CatalogNameEntry] = Field(default_factory=list)
    total_catalogs_count: int = Field(0, description="Catalogs in the project, on all pages.")
    next_page_url: str | None = None
    previous_page_url: str | None = None

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.catalog_names]


class CatalogItem(_Wrapped):
    """A catalog item with its properties (``CatalogItemWithProperties``)."""

    catalog_name: str | None = None
    item_id: str
    last_modified: datetime | int | str | None = Field(
        None, description="When the item was last written."
    )
    size: int | None = Field(None, description="Serialized size of the value, in bytes.")
    value: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _plain_value(cls, data: Any) -> Any:
        # The Swagger models the value as a Play JsObject ({underlying: {...}}); the wire
        # carries the plain object, but accept both.
        data = _unwrap_params(data)
        if isinstance(data, dict) and isinstance(data.get("value"), dict):
            value = data["value"]
            if set(value) == {"underlying"} and isinstance(value["underlying"], dict):
                data = {**data, "value": value["underlying"]}
        return data


class CatalogItemsPage(_Wrapped):
    """A page of a catalog's items (``GetCatalogItemsResponse``)."""

    catalog_items_with_properties: list[CatalogItem] = Field(default_factory=list)
    total_items_count: int = Field(0, description="Items in the catalog, on all pages.")
    next_page_url: str | None = None
    previous_page_url: str | None = None


class CatalogFieldMappings(_Wrapped):
    """A catalog's schema (``CatalogFieldMappingsResponse``).

    ``defined_mappings`` maps each typed field (nested fields as ``parent.child``) to its type;
    ``undefined_fields`` lists fields present in items that have no type yet.
    """

    defined_mappings: dict[str, str] = Field(default_factory=dict)
    undefined_fields: list[str] = Field(default_factory=list)


class CatalogFieldDefinition(RequestModel):
    """One field's type, for ``update_catalog_field_mappings`` (``CatalogFieldDefinition``).

    An ``object`` field may list the types of its own fields in ``children``.
    """

    field_name: str = Field(min_length=1, pattern=r"^[^.]+$", description="No periods.")
    field_type: CatalogFieldType
    children: list[CatalogFieldDefinition] | None = None

    @model_validator(mode="after")
    def _children_only_for_objects(self) -> CatalogFieldDefinition:
        if self.children and self.field_type != "object":
            raise ValueError(f"{self.field_name}: only an object field may have children")
        return self
