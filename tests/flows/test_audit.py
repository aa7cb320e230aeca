"""The hashed audit lines the GDPR and suppression flows share: written whole, read back past a
torn last line, never holding more than the hash."""

from __future__ import annotations

import json
import uuid

from prefect_iterable.flows._audit import append_lines, audit_line, current_flow_run_id, read_lines
from prefect_iterable.flows._storage import Storage


def test_a_line_is_hash_time_outcome_fields_then_the_run(tmp_path):
    line = audit_line("ab" * 32, "suppressed", "run-1", at="2026-12-03T00:00:00+00:00", list_id=7)
    assert list(line) == ["sha256", "at", "outcome", "list_id", "flow_run_id"]
    assert line["flow_run_id"] == "run-1" and line["list_id"] == 7


def test_lines_are_appended_and_read_back_past_a_torn_last_line(tmp_path):
    storage = Storage(str(tmp_path))
    first = [audit_line(f"{n:064x}", "forgotten", "run-1") for n in range(3)]
    append_lines(storage, "audit.jsonl", first)
    with (tmp_path / "audit.jsonl").open("a") as out:
        out.write('{"sha256": "cut')  # a run killed mid-write
    assert list(read_lines(storage, "audit.jsonl")) == first
    raw = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert [json.loads(r) for r in raw[:3]] == first


def test_outside_a_flow_run_the_run_id_is_a_fresh_uuid():
    assert uuid.UUID(current_flow_run_id()) != uuid.UUID(current_flow_run_id())
