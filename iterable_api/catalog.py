"""The action catalog: every Iterable action this library speaks, looked up by id or Python name."""

from __future__ import annotations

from prefect_iterable.api._actions import ACTIONS
from prefect_iterable.api._catalog_types import (
    Action,
    Effect,
    Limit,
    Location,
    Param,
    Period,
    ResponseKind,
    Scope,
    Tier,
)

__all__ = [
    "ACTIONS",
    "Action",
    "Effect",
    "Limit",
    "Location",
    "Param",
    "Period",
    "ResponseKind",
    "Scope",
    "Tier",
    "get_action",
]

_BY_KEY: dict[str, Action] = {a.id: a for a in ACTIONS} | {a.name: a for a in ACTIONS}


def get_action(key: str | Action) -> Action:
    """The action for an ``ITERABLE_…`` id or its Python name; raises ``KeyError`` otherwise."""
    if isinstance(key, Action):
        return key
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown Iterable action {key!r}") from None
