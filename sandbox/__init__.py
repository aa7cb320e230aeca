"""A local Iterable: the same API, limits, errors and state, served on loopback.

It shares only the catalog (the facts of the API) with the client, so it can check the client.
"""

from prefect_iterable.sandbox.app import DEMO_API_KEY, Sandbox
from prefect_iterable.sandbox.server import SandboxServer

__all__ = ["DEMO_API_KEY", "Sandbox", "SandboxServer"]
