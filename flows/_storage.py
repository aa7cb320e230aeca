"""Storage locations the flows take as parameters: a local folder or a saved filesystem block.

The folder itself is ``prefect_iterable.api.storage.Store`` (plain fsspec, no Prefect); this module
only turns what a user types into one: a path, or the name of a saved ``LocalFileSystem`` or
``RemoteFileSystem`` block (``local-file-system/NAME``, ``remote-file-system/NAME``, or for
``storage_block`` parameters the bare ``NAME``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO, Any

from prefect_iterable.api.files import RecordCounter
from prefect_iterable.api.storage import HOST_TAG, FileDigest, Store, dumps_compact, open_file

__all__ = [
    "BLOCK_SLUG",
    "ArchiveStore",
    "FileDigest",
    "RecordCounter",
    "Storage",
    "dumps_compact",
    "load_storage_block",
    "open_source",
    "open_store",
]

_HOST = HOST_TAG  # the name the export tests know it by

#: A storage or source parameter that names a saved filesystem block rather than a path.
BLOCK_SLUG = re.compile(r"^(local-file-system|remote-file-system)/[A-Za-z0-9][\w.-]*$")


def load_storage_block(name: str, parameter: str = "storage_block") -> Any:
    """A saved ``LocalFileSystem`` or ``RemoteFileSystem`` block by name.

    ``name`` is the block's name (``my-archive``) or its slug (``local-file-system/my-archive``,
    ``remote-file-system/my-archive``). Raises ``ValueError`` naming ``parameter``.
    """
    from prefect.blocks.core import Block
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem

    name = name.strip()
    if not name:
        raise ValueError(f"{parameter}: empty block name")
    if "/" in name:
        try:
            block = Block.load(name)
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{parameter}: cannot load {name!r}: {exc}") from None
    else:
        block = None
        for kind in (LocalFileSystem, RemoteFileSystem):
            try:
                block = kind.load(name)
                break
            except (ValueError, KeyError):
                continue
        if block is None:
            raise ValueError(
                f"{parameter}: no LocalFileSystem or RemoteFileSystem block named {name!r}"
            )
    if not isinstance(block, LocalFileSystem) and not hasattr(block, "filesystem"):
        raise ValueError(
            f"{parameter}: {name!r} is a {type(block).__name__}, not a LocalFileSystem or an "
            "fsspec RemoteFileSystem block"
        )
    return block


def _block_root(block: Any) -> tuple[Any, str] | Path:
    """A loaded block's folder: a local ``Path``, or ``(fsspec filesystem, base URL)``."""
    from prefect.filesystems import LocalFileSystem

    if isinstance(block, LocalFileSystem):
        return Path(block.basepath).expanduser().resolve() if block.basepath else Path.cwd()
    return block.filesystem, str(block.basepath).rstrip("/")


def store_from_block(name: str, parameter: str = "storage_block") -> Store:
    """The folder a saved filesystem block points at."""
    root = _block_root(load_storage_block(name, parameter))
    if isinstance(root, Path):
        return Store.local_folder(root, f"LocalFileSystem block {name!r}:")
    fs, base = root
    return Store.remote(fs, base, f"block {name!r} ({base})")


def open_store(location: str) -> Store:
    """A folder from a parameter: a ``local-file-system/NAME`` or ``remote-file-system/NAME``
    block, else a local path (``~`` expanded, created if missing)."""
    location = location.strip()
    if not location:
        raise ValueError("the storage location is empty: give a path or a block name")
    if BLOCK_SLUG.match(location):
        return store_from_block(location, "storage")
    return Store.local_folder(location)


class Storage(Store):
    """``open_store(location)`` as a class, for the flows that construct it by location."""

    def __init__(self, location: str) -> None:
        store = open_store(location)
        super().__init__(store.fs, store.root, local=store.local, label=store.label)


class ArchiveStore(Store):
    """The archive's folder: ``storage_block`` when given, else the folder ``storage_path``."""

    @classmethod
    def open(cls, storage_block: str | None, storage_path: str) -> ArchiveStore:
        """The block named ``storage_block``, else the local folder ``storage_path``."""
        if storage_block:
            store = store_from_block(storage_block)
        elif not storage_path or not storage_path.strip():
            raise ValueError("storage_path: empty; give a folder or a storage_block")
        else:
            store = Store.local_folder(storage_path, "local folder")
        return cls(store.fs, store.root, local=store.local, label=store.label)


def _local_block_path(base: Path, path: str) -> Path:
    """``path`` inside a local block's base path, refused if it leads outside it."""
    resolved = (base / Path(path).expanduser()).resolve()
    if resolved != base and base not in resolved.parents:
        raise ValueError(f"{path!r} is outside the block's base path {base}")
    return resolved


def open_source(path: str, block: str | None = None) -> tuple[IO[bytes], int, str]:
    """Open an input file for binary reading: ``(handle, size in bytes, where)``.

    ``path`` is local, or inside the saved filesystem block ``block``. Raises ``ValueError``
    naming the file when it cannot be read, before anything is sent.
    """
    if not path or not path.strip():
        raise ValueError("source: no file given")
    if not block:
        return open_file(path)
    if not BLOCK_SLUG.match(block):
        raise ValueError(
            f"source_block: {block!r} is not a filesystem block name; use "
            "'local-file-system/NAME' or 'remote-file-system/NAME'"
        )
    root = _block_root(load_storage_block(block, "source_block"))
    if isinstance(root, Path):
        return open_file(str(_local_block_path(root, path)))
    fs, base = root
    return open_file(f"{base}/{path.lstrip('/')}", fs)
