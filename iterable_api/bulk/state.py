"""What an import has accounted for: the checkpoint and the dead-letter file, in one ``Store``.

Every record of the file ends in exactly one of three places: **done** (Iterable accepted it),
**rejected** (a line in the dead-letter file, with its line number, the record and the reason),
or **still to do** (after the checkpoint; the next run continues there).

Batches are committed in file order: the dead letters of a batch are appended, then the
checkpoint is replaced (atomically on a local folder; an object store shows an upload only when
it completes), so a crash can at worst resend the batches that were in flight. The checkpoint is
a few hundred bytes whatever the file's size: it holds offsets and counts, never a record.

The store may be a local folder or a remote one (a ``RemoteFileSystem`` block's filesystem), so
that a run on another worker resumes where this one stopped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from prefect_iterable.api.bulk.batches import Batch
from prefect_iterable.api.bulk.records import Reader
from prefect_iterable.api.bulk.sending import Sent
from prefect_iterable.api.storage import Store, dumps_compact

__all__ = ["CHECKPOINT_VERSION", "Checkpoint", "ImportState", "prefix_hash", "state_names"]

CHECKPOINT_VERSION = 1


@dataclass
class Checkpoint:
    """What is accounted for: every record before ``offset`` is done or in the dead-letter file."""

    source: str
    kind: str
    format: str
    offset: int = 0
    line: int = 0  # the last line accounted for
    done: int = 0
    rejected: int = 0
    dead_letter_bytes: int = 0
    prefix_sha256: str = ""  # of the file's first 64 KiB, to notice a different file
    complete: bool = False
    updated_at: str = ""
    version: int = CHECKPOINT_VERSION

    def dump(self) -> dict[str, Any]:
        """The checkpoint as the JSON document it is stored as."""
        return dict(self.__dict__)


def prefix_hash(handle: IO[bytes]) -> str:
    """SHA-256 of the file's first 64 KiB: a resume on a different file is refused."""
    handle.seek(0)
    digest = hashlib.sha256(handle.read(65_536)).hexdigest()
    handle.seek(0)
    return digest


def state_names(where: str, kind: str) -> tuple[str, str, str]:
    """``(key, checkpoint name, dead-letter name)`` for an import of ``kind`` from ``where``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(where).stem)[:60] or "source"
    key = hashlib.sha256(f"{kind}|{where}".encode()).hexdigest()[:12]
    return key, f"{stem}-{kind}-{key}.checkpoint.json", f"{stem}-{kind}-{key}.rejected.ndjson"


@dataclass
class ImportState:
    """The checkpoint and the dead-letter file of one import, in ``store``.

    ``on_commit`` is called after each commit (e.g. to show progress); ``requests`` and
    ``max_body`` count what this run sent.
    """

    store: Store
    checkpoint_name: str
    dead_letter_name: str
    checkpoint: Checkpoint
    on_commit: Callable[[Checkpoint], None] | None = None
    requests: int = 0
    max_body: int = 0
    resumed_from: int = field(default=0)

    @classmethod
    def open(
        cls,
        store: Store,
        *,
        where: str,
        kind: str,
        fmt: str,
        prefix: str,
        size: int,
        start: tuple[int, int],
        resume: bool,
    ) -> ImportState:
        """The state of an import of ``where``: the saved checkpoint when ``resume`` (checked to
        be for the same kind, format and file), else a fresh one at ``start`` (offset, line).

        The dead-letter file is cut back to what the checkpoint accounts for, and the checkpoint
        is saved at once, so a bad store fails before anything is sent.
        """
        _, checkpoint_name, dead_letter_name = state_names(where, kind)
        checkpoint = Checkpoint(where, kind, fmt, offset=start[0], line=start[1])
        resumed_from = 0
        saved = store.read_json(checkpoint_name) if resume else None
        if saved is not None:
            label = store.where(checkpoint_name)
            if not isinstance(saved, dict) or saved.get("version") != CHECKPOINT_VERSION:
                raise ValueError(f"{label}: unknown checkpoint version; pass resume=false")
            if (saved.get("kind"), saved.get("format")) != (kind, fmt):
                raise ValueError(
                    f"{label} is for {saved.get('kind')} as {saved.get('format')}, not "
                    f"{kind} as {fmt}; pass resume=false to start over"
                )
            if saved.get("prefix_sha256") != prefix or saved.get("offset", 0) > size:
                raise ValueError(
                    f"source: {where} is not the file {checkpoint_name} was made for (it "
                    "changed); pass resume=false to start over"
                )
            checkpoint = Checkpoint(**saved)
            resumed_from = checkpoint.line
        checkpoint.prefix_sha256 = prefix
        checkpoint.complete = False
        store.truncate(dead_letter_name, checkpoint.dead_letter_bytes)
        state = cls(store, checkpoint_name, dead_letter_name, checkpoint, resumed_from=resumed_from)
        state.save()
        return state

    @property
    def checkpoint_where(self) -> str:
        return self.store.where(self.checkpoint_name)

    @property
    def dead_letter_where(self) -> str:
        return self.store.where(self.dead_letter_name)

    def commit(self, batch: Batch, sent: Sent | None, reader: Reader) -> None:
        """Account for ``batch``: its dead letters (in file order), then the checkpoint."""
        reasons = sent.reasons if sent else []
        # In file order: a record rejected before sending comes before the record to send at
        # its position; records Iterable refused are read again from the file.
        found: list[tuple[int, int, dict[str, Any]]] = [
            (
                position,
                0,
                _dead_letter(record.line, record.original, record.error, record.start, record.end),
            )
            for position, record in batch.rejected
        ]
        refused = [i for i, reason in enumerate(reasons) if reason is not None]
        for i in refused:
            start, end, line = batch.offsets[i], batch.ends[i], batch.lines[i]
            original = reader.original_at(start, end, line)
            found.append((i, 1, _dead_letter(line, original, reasons[i], start, end)))
        found.sort(key=lambda item: item[:2])
        if sent:
            self.requests += sent.requests
            self.max_body = max([self.max_body, *sent.bodies])
        cp = self.checkpoint
        if found:
            data = "".join(dumps_compact(entry) + "\n" for _, _, entry in found).encode()
            self.store.append(self.dead_letter_name, data)
            cp.dead_letter_bytes += len(data)
        cp.offset = batch.end
        cp.line = batch.last_line
        cp.done += batch.count - len(refused)
        cp.rejected += len(found)
        self.save()
        if self.on_commit is not None:
            self.on_commit(cp)

    def finish(self) -> None:
        """The whole file is accounted for."""
        self.checkpoint.complete = True
        self.save()

    def save(self) -> None:
        """Replace the stored checkpoint with this one."""
        self.checkpoint.updated_at = datetime.now(timezone.utc).isoformat()
        self.store.write_bytes(
            self.checkpoint_name,
            (json.dumps(self.checkpoint.dump(), indent=2, sort_keys=True) + "\n").encode(),
        )


def _dead_letter(
    line: int, original: Any, reason: str | None, start: int, end: int
) -> dict[str, Any]:
    return {
        "line": line,
        "record": original,
        "reason": reason,
        "offset": start,
        "length": end - start,
    }
