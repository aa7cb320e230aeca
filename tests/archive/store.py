"""A minimal ``ArchiveTarget`` over a local folder: what a user of the library could bring."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from fsspec.implementations.local import LocalFileSystem

from prefect_iterable.api.files import FileSummary, RecordTally


class DirStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.fs = LocalFileSystem(auto_mkdir=True)

    def path(self, name: str) -> str:
        return str(self.root / name)

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def size(self, name: str) -> int | None:
        return (self.root / name).stat().st_size if self.exists(name) else None

    def digest(self, name: str, kind: Any) -> FileSummary | None:
        if not self.exists(name):
            return None
        tally = RecordTally(kind)
        tally.feed((self.root / name).read_bytes())
        return tally.summary()

    def read_json(self, name: str) -> Any:
        return json.loads((self.root / name).read_text()) if self.exists(name) else None

    def write_json(self, name: str, value: Any) -> None:
        with self.writer(name) as out:
            out.write(json.dumps(value).encode())

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator[IO[bytes]]:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{hashlib.sha256(name.encode()).hexdigest()[:8]}")
        try:
            with temp.open("wb") as out:
                yield out
            temp.replace(target)
        finally:
            temp.unlink(missing_ok=True)

    def remove(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)
