"""Files the jobs read and write: one folder abstraction over fsspec, local or remote.

Plain Python (fsspec, no Prefect), so users' own jobs can use it and the rules live in one place.
Loading a Prefect filesystem block by name is the flows' business (``prefect_iterable.flows
._storage``); a block's fsspec filesystem and base path are all that ``Store`` needs.

* ``Store``: a folder reached through an fsspec filesystem: a local directory, or a remote one
  (``s3://``, ``gcs://``, ``memory://`` …). Whole files are written atomically (``write_json``,
  ``writer``), appends are linear on both (``append``), and a file is read back as one stream.
* ``open_file``: a binary, seekable handle on an input file, local or remote.
* ``iter_lines``: a binary file line by line from a byte offset, with each line's offsets and a
  bound on its length, so that an over-long line never sits whole in memory.
* ``atomic_write_json`` / ``append_jsonl``: durable writes to local files.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import itertools
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from prefect_iterable.api.files import RecordCounter

__all__ = [
    "HOST_TAG",
    "FileDigest",
    "Line",
    "Store",
    "append_jsonl",
    "atomic_write_json",
    "dumps_compact",
    "iter_lines",
    "open_file",
]

CHUNK_BYTES = 1 << 20
#: A temporary file older than this whose writer cannot be checked (another host) is abandoned.
STALE_PART_SECONDS = 3600.0
#: This host, as temporary file names carry it (so that a sweep knows whose writer is gone).
HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
# ``.<name>.<host>-<pid>-<random>.part``; older writers used ``.<name>.<random>.part``.
_PART = re.compile(r"^\..+?\.(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-)?[0-9a-f]{8}\.part$")


def dumps_compact(value: Any) -> str:
    """JSON as the client puts it on the wire: no spaces, UTF-8 kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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


class Store:
    """A folder reached through an fsspec filesystem; names inside it use ``/``.

    On a local folder a whole file is written under a temporary name and renamed into place when
    complete (a crash leaves the old file or none; the temporary name carries the writer's host
    and process, so that ``sweep_parts`` can remove what a killed process left), and ``append``
    adds to the file itself. Object stores have no append and no rename: an upload becomes
    visible when it completes, and each ``append`` writes one new immutable object under
    ``NAME.parts/``, named to sort in write order, which ``read_bytes``/``list``/``delete`` treat
    as part of ``NAME``. So each append uploads only its own bytes, and a later process's parts
    sort after, never replacing, an earlier one's.
    """

    PARTS = ".parts"

    def __init__(self, fs: Any, root: str, *, local: bool, label: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self.local = local
        #: What to call this folder in messages (never a secret: no credentials in it).
        self.label = label
        self._seq = itertools.count()

    @classmethod
    def local_folder(cls, path: str | os.PathLike[str], label: str = "local folder") -> Store:
        """A local directory (created if missing); ``ValueError`` if it cannot be written."""
        from fsspec.implementations.local import LocalFileSystem

        root = Path(path).expanduser().resolve()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"cannot use {root} as a folder: {exc}") from None
        if not os.access(root, os.W_OK):
            raise ValueError(f"cannot write to the folder {root}")
        return cls(LocalFileSystem(auto_mkdir=True), str(root), local=True, label=f"{label} {root}")

    @classmethod
    def remote(cls, fs: Any, root: str, label: str) -> Store:
        """A folder ``root`` (a URL such as ``s3://bucket/prefix``) on fsspec filesystem ``fs``."""
        return cls(fs, str(root), local=False, label=label)

    # ---- names ---------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        return self.local

    @property
    def location(self) -> str:
        """Where this folder is, for messages."""
        return self.label

    def path(self, name: str) -> str:
        """The full path (or URL) of ``name`` in this store."""
        return f"{self.root}/{name.lstrip('/')}"

    def where(self, name: str) -> str:
        """The full path or URL of ``name`` (of the folder itself for ``""``), for results."""
        return self.path(name) if name else self.root

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

    def list(self, pattern: str) -> list[str]:
        """Names (not paths) of files matching a glob ``pattern``, sorted."""
        if self.local:
            return sorted(p.name for p in Path(self.root).glob(pattern) if p.is_file())
        parts = self.fs.glob(f"{self.root}/{pattern}{self.PARTS}")
        found = [*self.fs.glob(f"{self.root}/{pattern}"), *parts]
        names = {str(p).rstrip("/").rsplit("/", 1)[-1] for p in found}
        return sorted({n.removesuffix(self.PARTS) for n in names})

    def read_bytes(self, name: str) -> bytes:
        """The whole of ``name`` (with its appended parts); ``FileNotFoundError`` if missing."""
        path = self.path(name)
        if self.local:
            return Path(path).read_bytes()
        whole = bytes(self.fs.cat_file(path)) if self.fs.isfile(path) else b""
        parts = sorted(self.fs.glob(f"{path}{self.PARTS}/*"))
        if not parts and not whole and not self.fs.exists(path):
            raise FileNotFoundError(path)
        contents = self.fs.cat(parts) if parts else {}
        return whole + b"".join(bytes(contents[p]) for p in parts)

    def read_json(self, name: str) -> Any:
        """The JSON document ``name`` holds, or ``None`` when there is none."""
        # One read of the whole object: a stream opened on an object store is pinned to the
        # version it saw first, and fails if a writer replaces the object while it reads.
        try:
            data = self.fs.cat_file(self.path(name))
        except FileNotFoundError:
            return None
        return json.loads(bytes(data).decode("utf-8"))

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
            owner = f"{HOST_TAG}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            temp = f"{parent}/.{target.rsplit('/', 1)[1]}.{owner}.part"
            with _replaced_atomically(Path(target), Path(temp)) as out:
                yield out
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

    def write_bytes(self, name: str, data: bytes) -> None:
        """Replace ``name`` with ``data`` (atomically on a local folder)."""
        with self.writer(name) as out:
            out.write(data)

    def write_json(self, name: str, value: Any) -> None:
        """Replace ``name`` with ``value`` as indented JSON (atomically on a local folder)."""
        data = (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
        self.write_bytes(name, data)

    def append(self, name: str, data: bytes) -> None:
        """Add ``data`` at the end of ``name`` (creating it), durably."""
        if self.local:
            with open(self.path(name), "ab") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            return
        # Wall-clock nanoseconds order the parts across processes, the counter within one; the
        # random tail keeps two writers from ever sharing a name.
        part = f"{time.time_ns():020d}-{next(self._seq):08d}-{uuid.uuid4().hex[:8]}"
        self.fs.pipe_file(f"{self.path(name)}{self.PARTS}/{part}", data)

    def truncate(self, name: str, size: int) -> None:
        """Cut ``name`` (a file written by ``append``) back to its first ``size`` bytes.

        What a crashed writer appended after the last state it recorded is dropped; a missing
        file is created empty locally (and stays missing remotely until the first append).
        """
        path = self.path(name)
        if self.local:
            with open(path, "ab") as out:
                out.truncate(size)
            return
        kept = 0
        if self.fs.isfile(path):
            whole = int(self.fs.size(path))
            if whole > size:
                self.fs.pipe_file(path, bytes(self.fs.cat_file(path, start=0, end=size)))
            kept = min(whole, size)
        found = self.fs.find(f"{path}{self.PARTS}", detail=True)
        for part in sorted(found):
            part_size = int(found[part]["size"])
            if kept + part_size <= size:
                kept += part_size
            elif kept < size:  # not written by append's one-object-per-call, but keep the rule
                self.fs.pipe_file(part, bytes(self.fs.cat_file(part, start=0, end=size - kept)))
                kept = size
            else:
                self.fs.rm_file(part)

    def delete(self, name: str) -> None:
        """Remove ``name`` and its appended parts; a missing file is not an error."""
        path = self.path(name)
        if self.local:
            Path(path).unlink(missing_ok=True)
            return
        if self.fs.exists(f"{path}{self.PARTS}"):
            self.fs.rm(f"{path}{self.PARTS}", recursive=True)
        if self.fs.exists(path):
            self.fs.rm_file(path)

    def remove(self, name: str) -> None:
        """Remove the single file ``name``, ignoring any error (a best-effort clean-up)."""
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.rm(self.path(name))

    def sweep_parts(self, folders: builtins.list[str]) -> builtins.list[str]:
        """Remove the temporary files a killed writer left in ``folders``; return their names.

        A ``.part`` file is left only by a process killed mid-write (SIGKILL, power loss): its
        writer is gone if it ran on this host under a process id that no longer exists, or, for
        another host (a shared folder), if the file has not changed for ``STALE_PART_SECONDS``.
        Files of live writers (a concurrent run) are kept. Only local folders have them.
        """
        if not self.local:
            return []
        removed: builtins.list[str] = []
        for folder in dict.fromkeys(folders):
            base = Path(self.path(folder))
            if not base.is_dir():
                continue
            for path in base.rglob(".*.part"):
                match = _PART.match(path.name)
                if match is None or not path.is_file():
                    continue
                if match["host"] == HOST_TAG:
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


# ---- input files ---------------------------------------------------------------------------


def open_file(path: str, fs: Any = None) -> tuple[IO[bytes], int, str]:
    """Open an input file for binary reading: ``(handle, size in bytes, where)``.

    ``path`` is local, or a URL on the fsspec filesystem ``fs``. Raises ``ValueError`` naming the
    file when it cannot be read, before anything is sent.
    """
    if not path or not path.strip():
        raise ValueError("source: no file given")
    if fs is not None:
        try:
            size = int(fs.size(path))
            handle = fs.open(path, "rb")
        except (OSError, FileNotFoundError) as exc:
            raise ValueError(f"source: cannot read {path}: {exc}") from None
        return handle, size, path
    local = Path(path).expanduser()
    try:
        local_handle = local.open("rb")
    except OSError as exc:
        raise ValueError(f"source: cannot read {local}: {exc.strerror or exc}") from None
    if not local.is_file():
        local_handle.close()
        raise ValueError(f"source: {local} is not a file")
    return local_handle, local.stat().st_size, str(local.resolve())


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


# ---- durable writes to local files ---------------------------------------------------------


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # make a rename durable where the OS allows
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> None:
    """Replace ``path`` with ``value`` as JSON, atomically and durably."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    with _replaced_atomically(target, temp) as out:
        out.write((json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


@contextlib.contextmanager
def _replaced_atomically(target: Path, temp: Path) -> Iterator[IO[bytes]]:
    """Write ``temp``, fsync it, rename it over ``target`` and fsync the folder; on error, no trace."""
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
    _fsync_dir(target.parent)


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
