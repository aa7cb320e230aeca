"""Connection settings read from the environment, for code that runs without a Prefect block."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from prefect_iterable.api.client import AsyncClient, Client

__all__ = ["IterableSettings"]


class IterableSettings(BaseSettings):
    """``ITERABLE_API_KEY``, ``ITERABLE_REGION``, ``ITERABLE_BASE_URL`` and friends."""

    model_config = SettingsConfigDict(env_prefix="ITERABLE_", extra="ignore")

    api_key: SecretStr = Field(description="The project's server-side API key.")
    region: Literal["us", "eu"] = Field("us", description="The data center the key belongs to.")
    base_url: str | None = Field(None, description="Overrides the region's URL.")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for an answer.")
    project_id: str | None = Field(None, description="Scope key for per-project limits.")
    organization_id: str | None = Field(None, description="Scope key for per-organization limits.")
    rate_limit_scale: float = Field(1.0, gt=0, description="Multiplies documented rates (sandbox).")
    permissions: str | None = Field(
        None, description="Comma-separated tiers, for the Prefect block."
    )

    def client_options(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "project_id": self.project_id,
            "organization_id": self.organization_id,
            "rate_limit_scale": self.rate_limit_scale,
        }

    def get_client(self, **overrides: Any) -> Client:
        return Client(self.api_key, **(self.client_options() | overrides))

    def get_async_client(self, **overrides: Any) -> AsyncClient:
        return AsyncClient(self.api_key, **(self.client_options() | overrides))
