"""Prefect blocks of prefect-iterable."""

from prefect_iterable.blocks.credentials import IterableCredentials, MissingPermission

__all__ = ["IterableCredentials", "MissingPermission"]
