"""An Iterable API client that never trips a 429 and never sends twice. Knows nothing of Prefect."""

from importlib import metadata as _metadata

from prefect_iterable.api import errors
from prefect_iterable.api._requests import RawJson
from prefect_iterable.api.catalog import (
    ACTIONS,
    Action,
    Effect,
    Limit,
    Param,
    ResponseKind,
    get_action,
)
from prefect_iterable.api.client import REGIONS, AsyncClient, Client
from prefect_iterable.api.config import IterableSettings
from prefect_iterable.api.limits import LocalLimiter, NoLimiter, shared_limiter
from prefect_iterable.api.retrying import RetryPolicy

try:
    __version__ = _metadata.version("prefect-iterable")
except _metadata.PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0"

__all__ = [
    "ACTIONS",
    "Action",
    "AsyncClient",
    "Client",
    "Effect",
    "IterableSettings",
    "Limit",
    "LocalLimiter",
    "NoLimiter",
    "Param",
    "REGIONS",
    "RawJson",
    "ResponseKind",
    "RetryPolicy",
    "errors",
    "get_action",
    "shared_limiter",
]
