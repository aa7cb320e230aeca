"""``IterableCredentials``: the Prefect block that holds an Iterable API key and makes clients."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from typing import Any, ClassVar, Literal, cast

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, HttpUrl, SecretStr, ValidationError

from prefect_iterable.api import AsyncClient, Client, IterableSettings
from prefect_iterable.api.catalog import Action
from prefect_iterable.api.errors import IterableError

__all__ = ["IterableCredentials", "MissingPermission"]

Permission = Literal["read", "write", "send", "delete"]

# The shared clients, one per block identity (``cache_key``): every task and flow of a process
# using the same credentials shares one connection pool. An httpx async client belongs to the
# event loop it was first used on, so async clients are kept per loop.
_clients: dict[tuple[Any, ...], Client] = {}
_async_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Any, ...], AsyncClient]
] = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()


class MissingPermission(IterableError, PermissionError):
    """The credentials block does not grant the tier an action needs; nothing was sent."""


class IterableCredentials(CredentialsBlock):
    """Credentials for one Iterable project: its API key, data center and what it may do.

    The key is stored encrypted by Prefect and never appears in logs, reprs, run names,
    parameters, results or errors. ``permissions`` limit what tasks using this block may do:
    by default it may read and write data; sending messages or proofs and deleting or forgetting
    users must be granted explicitly.

    Examples:
        Load saved credentials and call Iterable:
        ```python
        from prefect_iterable.blocks import IterableCredentials

        credentials = IterableCredentials.load("BLOCK_NAME")
        with credentials.get_client() as client:
            client.call("ITERABLE_LIST_CAMPAIGNS", page=1, page_size=20)
        ```
    """

    _block_type_name: ClassVar[str] = "Iterable Credentials"
    _block_type_slug: ClassVar[str] = "iterable-credentials"
    _logo_url: ClassVar[HttpUrl | None] = None
    _documentation_url: ClassVar[HttpUrl | None] = HttpUrl(
        "https://github.com/prefect-iterable/prefect-iterable#credentials"
    )

    api_key: SecretStr = Field(
        default=...,
        title="API Key",
        description="A server-side API key of the Iterable project (Integrations > API Keys).",
    )
    region: Literal["us", "eu"] = Field(
        default="us",
        title="Data center",
        description="The data center of the project: us (api.iterable.com) or eu (api.eu.iterable.com).",
    )
    base_url: str | None = Field(
        default=None,
        title="Base URL",
        description="Overrides the data center's URL, for the local sandbox or a proxy.",
    )
    timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for Iterable to answer a request."
    )
    permissions: list[Permission] = Field(
        default_factory=lambda: list[Permission](["read", "write"]),
        description="What tasks using this block may do: read, write, send (messages and "
        "proofs), delete (deletes and GDPR forget).",
    )
    rate_limit_mode: Literal["local", "prefect"] = Field(
        default="local",
        title="Rate limit mode",
        description="local: throttle within each process; prefect: share Iterable's limits across "
        "workers through Prefect global concurrency limits (create them first).",
    )
    project_id: str | None = Field(
        default=None,
        description="The Iterable project id, so that several keys of one project share its limits.",
    )
    organization_id: str | None = Field(
        default=None,
        description="The Iterable organization id, so that projects of one organization share "
        "its limits (exports).",
    )
    rate_limit_scale: float = Field(
        default=1.0,
        gt=0,
        description="Multiplies Iterable's documented rates; only for a sandbox that runs its "
        "limits faster.",
    )

    @classmethod
    def from_env(cls) -> IterableCredentials:
        """Credentials from ``ITERABLE_API_KEY``, ``ITERABLE_REGION`` and ``ITERABLE_BASE_URL``.

        ``ITERABLE_PERMISSIONS`` (comma-separated) widens the default read and write.
        """
        try:
            settings = IterableSettings()
        except ValidationError:
            raise ValueError(
                "no Iterable credentials: pass an IterableCredentials block, or set "
                "ITERABLE_API_KEY (and ITERABLE_REGION or ITERABLE_BASE_URL)"
            ) from None
        options: dict[str, Any] = {
            k: v for k, v in settings.client_options().items() if v is not None
        }
        if settings.permissions:
            options["permissions"] = [
                p.strip() for p in settings.permissions.split(",") if p.strip()
            ]
        return cls(api_key=settings.api_key, **options)

    @classmethod
    def load_or_env(cls, name: str | None) -> IterableCredentials:
        """The saved block called ``name``; without a name, credentials from the environment.

        Flows take a block *name* rather than the block, so that deployment and UI runs store a
        name, never a key.
        """
        if not name:
            return cls.from_env()
        # Block.load is sync-compatible: called from sync code, it returns the block itself.
        return cast("IterableCredentials", cls.load(name))

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "region": self.region,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "project_id": self.project_id,
            "organization_id": self.organization_id,
            "rate_limit_scale": self.rate_limit_scale,
        }
        if self.rate_limit_mode == "prefect":
            from prefect_iterable.blocks.limits import PrefectGlobalLimiter

            options["limiter"] = PrefectGlobalLimiter()
        return options

    def get_client(self, **overrides: Any) -> Client:
        """The synchronous ``prefect_iterable.api.Client`` for these credentials.

        It refuses, before sending, any action whose tier the block does not grant
        (``MissingPermission``). Without ``overrides`` it is the process's shared client for this
        block (thread-safe, one connection pool; do not close it, a closed one is replaced). With
        ``overrides`` (``retry=``, ``timeout=``, …) it is a new client of yours: close it, or use
        ``with``.
        """
        if overrides:
            return Client(self.api_key, **self._client_options(overrides))
        key = self.cache_key()
        with _clients_lock:
            client = _clients.get(key)
            if client is None or client.is_closed:
                client = _clients[key] = Client(self.api_key, **self._client_options({}))
            return client

    def get_async_client(self, **overrides: Any) -> AsyncClient:
        """The ``prefect_iterable.api.AsyncClient`` twin of ``get_client``.

        Without ``overrides``, shared per block and per running event loop (an async client
        cannot move between loops); with them, a new client to ``await client.aclose()``.
        """
        if overrides:
            return AsyncClient(self.api_key, **self._client_options(overrides))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return AsyncClient(self.api_key, **self._client_options({}))
        key = self.cache_key()
        with _clients_lock:
            clients = _async_clients.setdefault(loop, {})
            client = clients.get(key)
            if client is None or client.is_closed:
                client = clients[key] = AsyncClient(self.api_key, **self._client_options({}))
            return client

    def _client_options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return self.client_options() | {"authorize": self.check_permission} | overrides

    def check_permission(self, action: Action, values: dict[str, Any] | None = None) -> None:
        """Refuse, before any request, a call whose tier this block does not grant.

        ``values`` (Python-named) matter where the tier depends on them: a campaign created with
        ``schedule_send`` left true will send, so it needs ``send``.
        """
        tier = action.tier_for(values or {}).value
        if tier not in self.permissions:
            raise MissingPermission(
                f"{action.id} needs the '{tier}' permission, which these credentials "
                f"do not grant (granted: {', '.join(self.permissions) or 'none'}). Add "
                f"'{tier}' to the block's permissions to allow it."
            )

    def cache_key(self) -> tuple[Any, ...]:
        """Identifies the connection this block describes, without holding the key itself."""
        digest = hashlib.sha256(self.api_key.get_secret_value().encode()).hexdigest()
        options = sorted((k, repr(v)) for k, v in self.client_options().items() if k != "limiter")
        return (digest, *options, self.rate_limit_mode, tuple(sorted(self.permissions)))
