"""An Iterable API client that never trips a 429 and never sends twice. Knows nothing of Prefect."""

from importlib import metadata as _metadata

from iterable_api import errors
from iterable_api._requests import RawJson
from iterable_api.catalog import ACTIONS, Action, Effect, Limit, Param, ResponseKind, get_action
from iterable_api.client import REGIONS, AsyncClient, Client
from iterable_api.config import IterableSettings
from iterable_api.limits import LocalLimiter, NoLimiter, shared_limiter
from iterable_api.retrying import RetryPolicy

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
