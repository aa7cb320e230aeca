"""Prefect blocks of prefect-iterable."""

from blocks.credentials import IterableCredentials, MissingPermission

__all__ = ["IterableCredentials", "MissingPermission"]
