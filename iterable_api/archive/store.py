"""What the archive needs of the place it writes to: a directory of named files.

The library defines only the shape; ``prefect_iterable.flows`` provides one over a local folder or
a Prefect filesystem block, and a user's own flow may bring any object with these methods.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import IO, Any, Literal, Protocol

__all__ = ["ArchiveTarget", "Digest", "RecordKind"]

RecordKind = Literal["csv", "json"]


class Digest(Protocol):
    """A stored file's size in bytes, SHA-256 (hex) and record count."""

    @property
    def bytes(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    @property
    def rows(self) -> int: ...


class ArchiveTarget(Protocol):
    """A directory whose names use ``/``; see ``prefect_iterable.flows``' ``ArchiveStore``."""

    @property
    def fs(self) -> Any:
        """An fsspec filesystem; files are read with ``fs.open(path(name), "rb")``."""

    def path(self, name: str) -> str: ...

    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int | None: ...

    def digest(self, name: str, kind: RecordKind) -> Digest | None: ...

    def read_json(self, name: str) -> Any: ...

    def write_json(self, name: str, value: Any) -> None: ...

    def writer(self, name: str) -> AbstractContextManager[IO[bytes]]:
        """A binary stream that becomes ``name`` only when the block exits without an error."""

    def remove(self, name: str) -> None: ...
