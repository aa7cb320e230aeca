"""Where archived files go: a local folder or a Prefect storage block, through fsspec.

``ArchiveStore`` is a directory reached through an fsspec filesystem:

* a local path (the ``storage_path`` parameter of a flow), or a saved ``LocalFileSystem`` block:
  fsspec's local filesystem under that directory;
* a saved ``RemoteFileSystem`` block (``s3://``, ``gcs://``, ``memory://`` …): the block's own
  fsspec filesystem under its ``basepath``.

Files are written as streams (``writer``), never built whole in memory. On a local directory a
file is written under a temporary name and renamed into place when complete (a crash leaves the
old file or none, never half of one; the temporary name carries the writer's host and process,
so that ``sweep_parts`` can remove what a killed process left); on object stores an upload becomes visible only when it
completes, so the stream goes to the final name. ``digest`` reads a file back as a stream and
returns its size, SHA-256 and record count (``RecordCounter``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from prefect_iterable.api.files import RecordCounter

__all__ = ["ArchiveStore", "FileDigest", "RecordCounter", "load_storage_block"]

CHUNK_BYTES = 1 << 20
#: A temporary file older than this whose writer cannot be checked (another host) is abandoned.
STALE_PART_SECONDS = 3600.0
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
# ``.<name>.<host>-<pid>-<random>.part``; older writers used ``.<name>.<random>.part``.
_PART = re.compile(r"^\..+?\.(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-)?[0-9a-f]{8}\.part$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


@dataclass(frozen=True)
class FileDigest:
    """What a file holds: its size in bytes, SHA-256 (hex) and records."""

    bytes: int
    sha256: str
    rows: int


def load_storage_block(name: str) -> Any:
    """A saved ``LocalFileSystem`` or ``RemoteFileSystem`` block by name.

    ``name`` is the block's name (``my-archive``) or its slug (``local-file-system/my-archive``,
    ``remote-file-system/my-archive``). Raises ``ValueError`` naming ``storage_block``.
    """
    from prefect.blocks.core import Block
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem

    name = name.strip()
    if not name:
        raise ValueError("storage_block: empty block name")
    if "/" in name:
        try:
            block = Block.load(name)
        except (ValueError, KeyError) as exc:
            raise ValueError(f"storage_block: cannot load {name!r}: {exc}") from None
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
                f"storage_block: no LocalFileSystem or RemoteFileSystem block named {name!r}"
            )
    if not isinstance(block, LocalFileSystem) and not hasattr(block, "filesystem"):
        raise ValueError(
            f"storage_block: {name!r} is a {type(block).__name__}, not a LocalFileSystem or an "
            "fsspec RemoteFileSystem block"
        )
    return block


class ArchiveStore:
    """A directory reached through an fsspec filesystem; names inside it use ``/``."""

    def __init__(self, fs: Any, root: str, *, local: bool, label: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.local = local
        self.label = label

    @classmethod
    def open(cls, storage_block: str | None, storage_path: str) -> ArchiveStore:
        """The block named ``storage_block``, else the local folder ``storage_path``."""
        from prefect.filesystems import LocalFileSystem

        if storage_block:
            block = load_storage_block(storage_block)
            if isinstance(block, LocalFileSystem):
                root = Path(block.basepath or ".").expanduser().resolve()
                return cls._local(root, f"LocalFileSystem block {storage_block!r}")
            base = str(block.basepath).rstrip("/")
            return cls(block.filesystem, base, local=False, label=f"block {storage_block!r}")
        if not storage_path or not storage_path.strip():
            raise ValueError("storage_path: empty; give a folder or a storage_block")
        return cls._local(Path(storage_path).expanduser().resolve(), "local folder")

    @classmethod
    def _local(cls, root: Path, label: str) -> ArchiveStore:
        from fsspec.implementations.local import LocalFileSystem as LocalFS

        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"cannot use {root} as the archive folder: {exc}") from None
        if not os.access(root, os.W_OK):
            raise ValueError(f"cannot write to the archive folder {root}")
        return cls(LocalFS(auto_mkdir=True), str(root), local=True, label=f"{label} {root}")

    # ---- names ---------------------------------------------------------------------------

    def path(self, name: str) -> str:
        """The full path (or URL) of ``name`` in this store."""
        return f"{self.root}/{name.lstrip('/')}"

    # ---- reading -------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        try:
            return bool(self.fs.isfile(self.path(name)))
        except OSError:
            return False

    def size(self, name: str) -> int | None:
        try:
            return int(self.fs.size(self.path(name)))
        except (OSError, FileNotFoundError, KeyError):
            return None

    def digest(self, name: str, kind: Literal["csv", "json"]) -> FileDigest | None:
        """Size, SHA-256 and records of ``name``, read as a stream; ``None`` if it is missing."""
        if not self.exists(name):
            return None
        digest = hashlib.sha256()
        counter = RecordCounter(kind)
        size = 0
        with self.fs.open(self.path(name), "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
                counter.feed(chunk)
                size += len(chunk)
        return FileDigest(size, digest.hexdigest(), counter.records)

    def read_json(self, name: str) -> Any:
        """The JSON document ``name`` holds, or ``None`` when there is none."""
        if not self.exists(name):
            return None
        with self.fs.open(self.path(name), "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))

    # ---- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator[IO[bytes]]:
        """A binary stream that becomes ``name`` when the block exits without an error.

        Locally: a temporary file in the same folder, fsync'ed and renamed over ``name``. On a
        remote filesystem: the upload itself (it appears when it completes).
        """
        target = self.path(name)
        parent = target.rsplit("/", 1)[0]
        if self.local:
            Path(parent).mkdir(parents=True, exist_ok=True)
            owner = f"{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            temp = f"{parent}/.{target.rsplit('/', 1)[1]}.{owner}.part"
            try:
                with open(temp, "wb") as out:
                    yield out
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            return
        with contextlib.suppress(Exception):
            self.fs.makedirs(parent, exist_ok=True)
        try:
            with self.fs.open(target, "wb") as out:
                yield out
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm(target)
            raise

    def write_json(self, name: str, value: Any) -> None:
        """Replace ``name`` with ``value`` as indented JSON (atomically on a local folder)."""
        data = (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
        with self.writer(name) as out:
            out.write(data)

    def sweep_parts(self, folders: list[str]) -> list[str]:
        """Remove the temporary files a killed writer left in ``folders``; return their names.

        A ``.part`` file is left only by a process killed mid-write (SIGKILL, power loss): its
        writer is gone if it ran on this host under a process id that no longer exists, or, for
        another host (a shared folder), if the file has not changed for ``STALE_PART_SECONDS``.
        Files of live writers (a concurrent run) are kept. Only local folders have them.
        """
        if not self.local:
            return []
        removed: list[str] = []
        for folder in dict.fromkeys(folders):
            base = Path(self.path(folder))
            if not base.is_dir():
                continue
            for path in base.rglob(".*.part"):
                match = _PART.match(path.name)
                if match is None or not path.is_file():
                    continue
                if match["host"] == _HOST:
                    stale = not _alive(int(match["pid"]))
                else:
                    try:
                        stale = time.time() - path.stat().st_mtime > STALE_PART_SECONDS
                    except OSError:
                        continue
                if stale:
                    with contextlib.suppress(OSError):
                        path.unlink()
                        removed.append(path.relative_to(self.root).as_posix())
        return removed

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.rm(self.path(name))
