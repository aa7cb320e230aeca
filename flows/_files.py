"""Files the flows read and write: input files, storage locations, checkpoints and JSON lines.

Everything here is plain Python (no Prefect run context needed), so the flows stay short and the
rules live in one place:

* ``Storage``: a directory the user chose, either a local path or a saved Prefect filesystem
  block (``local-file-system/NAME`` or ``remote-file-system/NAME``).
* ``open_source``: a binary, seekable handle on an input file, local or inside a block.
* ``atomic_write_json``: write a whole JSON document so that a crash leaves the old one or the
  new one, never half of either (temporary file in the same directory, fsync, ``os.replace``).
* ``append_jsonl``: append JSON lines and make them durable before returning.
* ``iter_lines``: read a binary file line by line from a byte offset, with each line's offsets and
  a bound on its length, so that an over-long line never sits whole in memory.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "BLOCK_SLUG",
    "Line",
    "Storage",
    "append_jsonl",
    "atomic_write_json",
    "dumps_compact",
    "iter_lines",
    "load_filesystem_block",
    "open_source",
]

#: A storage or source parameter that names a saved filesystem block rather than a path.
BLOCK_SLUG = re.compile(r"^(local-file-system|remote-file-system)/[A-Za-z0-9][\w.-]*$")


def dumps_compact(value: Any) -> str:
    """JSON as the client puts it on the wire: no spaces, UTF-8 kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def load_filesystem_block(slug: str) -> Any:
    """Load a saved ``LocalFileSystem`` or ``RemoteFileSystem`` block by ``type-slug/name``."""
    from prefect.blocks.core import Block

    try:
        return Block.load(slug)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"could not load the filesystem block {slug!r}: {exc}") from None


def local_block_path(block: Any, path: str) -> Path:
    """``path`` inside a ``LocalFileSystem`` block's base path (the current directory without
    one), refused if it leads outside it; from the block's public ``basepath`` alone."""
    base = Path(block.basepath).expanduser().resolve() if block.basepath else Path.cwd()
    resolved = (base / Path(path).expanduser()).resolve()
    if resolved != base and base not in resolved.parents:
        raise ValueError(f"{path!r} is outside the block's base path {base}")
    return resolved


# ---- storage locations ---------------------------------------------------------------------


class Storage:
    """A directory the user chose: a local path, or a saved Prefect filesystem block.

    A local path and a ``LocalFileSystem`` block are local directories, so ``append`` adds lines to
    an existing file. A ``RemoteFileSystem`` (fsspec: s3://, gcs://, memory://…) has no append:
    each ``append`` writes one new immutable object under ``NAME.parts/``, named to sort in write
    order, and ``read_bytes``/``list`` see the file and its parts as one. Each append uploads only
    its own bytes, and a later process's parts sort after, never replacing, an earlier one's.
    """

    PARTS = ".parts"

    def __init__(self, location: str) -> None:
        location = location.strip()
        if not location:
            raise ValueError("the storage location is empty: give a path or a block name")
        self.location = location
        self._fs: Any = None  # an fsspec filesystem for a RemoteFileSystem block
        self._base: str = ""
        self._seq = itertools.count()
        if BLOCK_SLUG.match(location):
            block = load_filesystem_block(location)
            if location.startswith("local-file-system/"):
                self.root: Path | None = local_block_path(block, "")
            else:
                self.root = None
                self._fs = block.filesystem
                self._base = str(block.basepath).rstrip("/")
        else:
            self.root = Path(location).expanduser()
        if self.root is not None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(f"cannot use {location!r} as storage: {exc}") from None
            if not os.access(self.root, os.W_OK):
                raise ValueError(f"cannot write to the storage directory {self.root}")

    @property
    def is_local(self) -> bool:
        return self.root is not None

    def where(self, name: str) -> str:
        """The full path or URL of ``name`` in this storage, for results and messages."""
        if self.root is not None:
            return str((self.root / name).resolve())
        return f"{self._base}/{name}"

    def list(self, pattern: str) -> list[str]:
        """Names (not paths) of files matching a glob ``pattern``, sorted."""
        if self.root is not None:
            return sorted(p.name for p in self.root.glob(pattern) if p.is_file())
        parts = self._fs.glob(f"{self._base}/{pattern}{self.PARTS}")
        found = [*self._fs.glob(f"{self._base}/{pattern}"), *parts]
        names = {str(p).rstrip("/").rsplit("/", 1)[-1] for p in found}
        return sorted({n.removesuffix(self.PARTS) for n in names})

    def read_bytes(self, name: str) -> bytes:
        if self.root is not None:
            return (self.root / name).read_bytes()
        path = f"{self._base}/{name}"
        whole = bytes(self._fs.cat_file(path)) if self._fs.isfile(path) else b""
        parts = sorted(self._fs.glob(f"{path}{self.PARTS}/*"))
        if not parts and not whole and not self._fs.exists(path):
            raise FileNotFoundError(path)
        contents = self._fs.cat(parts) if parts else {}
        return whole + b"".join(bytes(contents[p]) for p in parts)

    def delete(self, name: str) -> None:
        """Remove ``name``; a missing file is not an error (a re-run may find it gone)."""
        if self.root is not None:
            (self.root / name).unlink(missing_ok=True)
            return
        path = f"{self._base}/{name}"
        if self._fs.exists(f"{path}{self.PARTS}"):
            self._fs.rm(f"{path}{self.PARTS}", recursive=True)
        if self._fs.exists(path):
            self._fs.rm_file(path)

    def append(self, name: str, data: bytes) -> None:
        """Add ``data`` at the end of ``name`` (creating it), durably."""
        if self.root is not None:
            with (self.root / name).open("ab") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            return
        # Wall-clock nanoseconds order the parts across processes, the counter within one; the
        # random tail keeps two writers from ever sharing a name.
        part = f"{time.time_ns():020d}-{next(self._seq):08d}-{uuid.uuid4().hex[:8]}"
        self._fs.pipe_file(f"{self._base}/{name}{self.PARTS}/{part}", data)


# ---- input files ---------------------------------------------------------------------------


def open_source(path: str, block: str | None = None) -> tuple[IO[bytes], int, str]:
    """Open an input file for binary reading: ``(handle, size in bytes, where)``.

    Raises ``ValueError`` naming the file when it cannot be read, before anything is sent.
    """
    if not path or not path.strip():
        raise ValueError("source: no file given")
    if block:
        if not BLOCK_SLUG.match(block):
            raise ValueError(
                f"source_block: {block!r} is not a filesystem block name; use "
                "'local-file-system/NAME' or 'remote-file-system/NAME'"
            )
        fs_block = load_filesystem_block(block)
        if block.startswith("local-file-system/"):
            local = local_block_path(fs_block, path)
        else:
            url = f"{str(fs_block.basepath).rstrip('/')}/{path.lstrip('/')}"
            fs = fs_block.filesystem
            try:
                size = int(fs.size(url))
                handle = fs.open(url, "rb")
            except (OSError, FileNotFoundError) as exc:
                raise ValueError(f"source: cannot read {url}: {exc}") from None
            return handle, size, url
    else:
        local = Path(path).expanduser()
    try:
        handle = local.open("rb")
    except OSError as exc:
        raise ValueError(f"source: cannot read {local}: {exc.strerror or exc}") from None
    if not local.is_file():
        handle.close()
        raise ValueError(f"source: {local} is not a file")
    return handle, local.stat().st_size, str(local.resolve())


@dataclass(frozen=True)
class Line:
    """One physical line: its number (1-based), byte offsets and bytes (without the newline).

    ``overlong`` lines keep only their first ``limit`` bytes in ``data``; ``end`` is still the
    offset just past the whole line, so reading resumes after it.
    """

    number: int
    start: int
    end: int
    data: bytes
    overlong: bool = False


def iter_lines(
    handle: IO[bytes],
    *,
    start: int = 0,
    first_number: int = 1,
    limit: int = 1_000_000,
    block_size: int = 1 << 20,
) -> Iterator[Line]:
    """The lines of ``handle`` from byte ``start``, each at most ``limit`` bytes kept.

    ``\\r\\n`` and ``\\n`` end a line; the last line may lack one. Reads in blocks with
    ``read()`` only, so any file-like object (fsspec's included) works.
    """
    handle.seek(start)
    offset = start  # the file offset of buffer[0]
    number = first_number
    buffer = b""
    pos = 0
    eof = False
    while True:
        newline = buffer.find(b"\n", pos)
        if newline == -1 and not eof and len(buffer) - pos <= limit:
            block = handle.read(block_size)
            if block:
                buffer = buffer[pos:] + block
                offset += pos
                pos = 0
                continue
            eof = True
            continue
        if newline != -1 and newline - pos <= limit:
            data = buffer[pos:newline]
            yield Line(number, offset + pos, offset + newline + 1, data.rstrip(b"\r"))
            pos = newline + 1
        elif newline == -1 and eof and len(buffer) - pos <= limit:
            if pos >= len(buffer):
                return
            data = buffer[pos:]
            yield Line(number, offset + pos, offset + len(buffer), data.rstrip(b"\r"))
            pos = len(buffer)
        else:
            # Over-long: keep the first ``limit`` bytes, skip to the end of the line.
            kept = buffer[pos : pos + limit]
            line_start = offset + pos
            while newline == -1 and not eof:
                offset += len(buffer)
                buffer = handle.read(block_size)
                pos = 0
                if not buffer:
                    eof = True
                    break
                newline = buffer.find(b"\n")
            if newline == -1:
                line_end = offset + len(buffer)
                pos = len(buffer)
            else:
                line_end = offset + newline + 1
                pos = newline + 1
            yield Line(number, line_start, line_end, kept, overlong=True)
        number += 1


# ---- durable writes ------------------------------------------------------------------------


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> None:
    """Replace ``path`` with ``value`` as JSON, atomically and durably."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(value, out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def append_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> int:
    """Append one JSON line per record to ``path``, durably; return the file's new size."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(dumps_compact(r) + "\n" for r in records).encode()
    with target.open("ab") as out:
        if data:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return out.tell()
