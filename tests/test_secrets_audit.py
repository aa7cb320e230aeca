"""The API key never leaves the credentials block: an audit of everything Prefect keeps.

Claims (docs/SECURITY.md), each proved here by running real work in an isolated Prefect home so
that the search is complete and deterministic:

* after the demo (every flagship flow on Prefect's ephemeral server, results persisted, DEBUG
  logs of ``iterable_api``, ``httpx`` and ``httpcore`` sent to Prefect), no file under
  ``PREFECT_HOME`` (the SQLite database, raw and row by row, persisted results, transaction
  records), no file the demo wrote and nothing it printed holds the key, raw or encoded; the
  block document holds it only encrypted;
* a block-typed flow parameter is stored as a ``$ref`` (deployment, UI) or masked (direct call);
* no task's run-name template uses the credentials;
* reprs, strs, pickles and ``__dict__`` of the credentials, both clients and every error built
  from a sandbox answer carry no key.

The searcher is shown to find a planted copy (raw, base64 inside a persisted result, in a database
row) before it is trusted to find nothing.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import inspect
import json
import lzma
import os
import pickle
import re
import signal
import sqlite3
import string
import subprocess
import sys
import time
import typing
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from prefect import flow

from prefect_iterable.api import AsyncClient, errors
from prefect_iterable.api.retrying import RetryPolicy
from prefect_iterable.blocks import IterableCredentials

REPO = Path(__file__).resolve().parents[1]
DEMO_BLOCK = "iterable-sandbox"
DEMO_KEY_ENV = "ITERABLE_DEMO_API_KEY"  # honoured by flows/demo.py once it reads its key from it
DEMO_DEFAULT_KEY = "sandbox-demo-key"  # what flows/demo.py uses otherwise
DEMO_TIMEOUT = 150

# ---- the searcher ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    where: str  # a path, "path:table.column" for a database row, "stdout" …
    form: str  # raw, base64, url, hex, utf-16, decoded-base64 …


def key_forms(key: str) -> dict[bytes, str]:
    """Byte strings whose presence betrays the key, each with the name of its encoding."""
    raw = key.encode()
    forms: dict[bytes, str] = {raw: "raw"}
    forms.setdefault(quote(key, safe="").encode(), "url")
    forms.setdefault(quote_plus(key).encode(), "url")
    forms.setdefault(raw.hex().encode(), "hex")
    forms.setdefault(raw.hex().upper().encode(), "hex")
    forms.setdefault(key.encode("utf-16-le"), "utf-16")
    forms.setdefault(json.dumps(key, ensure_ascii=True)[1:-1].encode(), "json")
    # Base64 at each of the three alignments the key can have inside a longer blob: keep only
    # the characters that depend on the key alone (whole 3-byte groups of it).
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        start = 4 if offset else 0
        end = (len(raw) + offset) // 3 * 4
        core = encoded[start:end]
        if len(core) >= 12:
            forms.setdefault(core, "base64")
            forms.setdefault(core.replace(b"+", b"-").replace(b"/", b"_"), "base64")
    return forms


_B64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{24,}={0,2}")
_UNWRAP = re.compile(rb"\\r|\\n|\r|\n")  # base64 wrapped in lines, in files or JSON strings


def _decoded_blobs(data: bytes) -> Iterator[bytes]:
    """Every base64 run in ``data`` decoded, and decompressed when it is compressed."""
    for match in _B64_RUN.finditer(_UNWRAP.sub(b"", data)):
        run = match.group()
        try:
            if b"-" in run or b"_" in run:
                blob = base64.urlsafe_b64decode(run + b"=" * (-len(run) % 4))
            else:
                blob = base64.b64decode(run + b"=" * (-len(run) % 4))
        except ValueError:
            continue
        yield blob
        for magic, opener in (
            (b"\x1f\x8b", gzip.decompress),
            (b"BZh", bz2.decompress),
            (b"\xfd7zXZ", lzma.decompress),
            (b"x", zlib.decompress),
        ):
            if blob.startswith(magic):
                try:
                    yield opener(blob)
                except Exception:  # noqa: S112 - not compressed after all
                    continue


def search_bytes(data: bytes, keys: list[str], where: str, depth: int = 2) -> list[Hit]:
    hits: list[Hit] = []
    unwrapped = _UNWRAP.sub(b"", data)
    for key in keys:
        for needle, form in key_forms(key).items():
            if needle in data or (form == "base64" and needle in unwrapped):
                hits.append(Hit(where, form))
    if not hits and depth:
        for blob in _decoded_blobs(data):
            for hit in search_bytes(blob, keys, where, depth - 1):
                hits.append(Hit(where, "decoded-" + hit.form))
    return sorted(set(hits), key=lambda h: (h.where, h.form))


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\0"


def search_database(path: Path, keys: list[str]) -> list[Hit]:
    """Every row of every table, value by value (a long text spans overflow pages)."""
    hits: list[Hit] = []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the schema
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    if value is None or isinstance(value, (int, float)):
                        continue
                    data = value if isinstance(value, bytes) else str(value).encode()
                    hits += search_bytes(data, keys, f"{path}:{table}.{column}")
    finally:
        db.close()
    return hits


def search_tree(root: Path, keys: list[str]) -> list[Hit]:
    """Every file under ``root`` byte by byte, and every SQLite database in it row by row."""
    hits: list[Hit] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        hits += search_bytes(path.read_bytes(), keys, str(path))
        if _is_sqlite(path):
            hits += search_database(path, keys)
    return hits


# ---- the demo, in a Prefect home of its own ------------------------------------------------


@dataclass
class DemoRun:
    root: Path  # everything the run wrote is under here
    home: Path
    output: Path
    returncode: int
    stdout: bytes
    stderr: bytes
    env_key: str


# The client's logger goes to Prefect's API (so into the database) and to stderr, at DEBUG.
# httpx and httpcore go to stderr only: sent to the API at DEBUG, the API log worker's own HTTP
# requests log into the handler that is sending them and the run hangs (Prefect 3.9.1).
API_LOGGERS = ("prefect_iterable.api",)
DEBUG_LOGGERS = ("prefect_iterable.api", "httpx", "httpcore")


def _logging_settings(root: Path) -> Path:
    """Prefect's own logging.yml, with the client's and httpx's loggers at DEBUG.

    ``PREFECT_LOGGING_EXTRA_LOGGERS`` gives a logger Prefect's API handler but not a level, so
    without this they would stay at the root's WARNING and nothing of theirs would be searched.
    """
    import prefect.logging

    default = Path(prefect.logging.__file__).with_name("logging.yml").read_text()
    extra = "".join(f"  {name}:\n    level: DEBUG\n\n" for name in DEBUG_LOGGERS)
    assert "\nloggers:\n" in default
    path = root / "logging.yml"
    path.write_text(default.replace("\nloggers:\n", "\nloggers:\n" + extra, 1))
    return path


def _demo_env(root: Path, env_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ITERABLE_"))}
    env.update(
        PREFECT_HOME=str(root / "home"),
        PREFECT_RESULTS_PERSIST_BY_DEFAULT="true",
        PREFECT_LOGGING_LEVEL="DEBUG",
        PREFECT_LOGGING_EXTRA_LOGGERS=",".join(API_LOGGERS),
        PREFECT_LOGGING_SETTINGS_PATH=str(_logging_settings(root)),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    env[DEMO_KEY_ENV] = env_key
    return env


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``python -m prefect_iterable.flows.demo`` on the ephemeral server, in a fresh PREFECT_HOME.

    Its working directory is inside the searched tree too, so that a file written to a relative
    path is searched as well.
    """
    root = tmp_path_factory.mktemp("secrets-audit")
    cwd = root / "cwd"
    cwd.mkdir()
    env_key = "itbl-demo-" + uuid.uuid4().hex
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect_iterable.flows.demo",
            "--users",
            "2000",
            "--output",
            str(root / "out"),
        ],
        cwd=cwd,
        env=_demo_env(root, env_key),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so that a timeout also ends its ephemeral Prefect server
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=DEMO_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            stderr += f"\n[killed after {DEMO_TIMEOUT} s]".encode()
    return DemoRun(root, root / "home", root / "out", process.returncode, stdout, stderr, env_key)


def _demo_block_key(home: Path) -> str:
    """The key the demo saved, decrypted with the Fernet key the server keeps in the database."""
    from cryptography.fernet import Fernet

    db = sqlite3.connect(f"file:{home / 'prefect.db'}?mode=ro", uri=True)
    try:
        (fernet,) = db.execute(
            "SELECT value FROM configuration WHERE key='ENCRYPTION_KEY'"
        ).fetchone()
        (data,) = db.execute(
            "SELECT data FROM block_document WHERE name = ?", (DEMO_BLOCK,)
        ).fetchone()
    finally:
        db.close()
    plain = Fernet(json.loads(fernet)["fernet_key"].encode()).decrypt(json.loads(data).encode())
    return json.loads(plain)["api_key"]


def test_the_demo_leaves_no_key_anywhere(demo_run: DemoRun) -> None:
    home = demo_run.home
    assert (home / "prefect.db").is_file(), demo_run.stderr.decode()[-3000:]

    # The block document holds the key, encrypted: it is the one to look for.
    saved_key = _demo_block_key(home)
    keys = sorted({saved_key, demo_run.env_key, DEMO_DEFAULT_KEY})

    # The searcher can fail: a planted raw copy, a persisted-result-like base64 pickle wrapped at
    # 76 characters, a compressed one and a database row are each found, then removed.
    planted = home / "storage" / "planted-raw"
    planted.parent.mkdir(exist_ok=True)
    planted.write_text(f"log line with {saved_key} in it")
    pickled = base64.encodebytes(pickle.dumps({"result": saved_key, "pad": "x" * 200}))
    wrapped = home / "storage" / "planted-result"
    wrapped.write_text(json.dumps({"metadata": {}, "result": pickled.decode()}))
    packed = base64.b64encode(zlib.compress(pickle.dumps({"result": saved_key})))
    compressed = home / "storage" / "planted-compressed"
    compressed.write_bytes(packed)
    scratch = demo_run.root / "scratch.db"
    source, copy = sqlite3.connect(home / "prefect.db"), sqlite3.connect(scratch)
    try:
        source.backup(copy)
        copy.execute("CREATE TABLE planted (value TEXT)")
        copy.execute("INSERT INTO planted VALUES (?)", (json.dumps({"api_key": saved_key}),))
        copy.commit()
    finally:
        source.close()
        copy.close()
    found = {(h.where, h.form) for h in search_tree(demo_run.root, [saved_key])}
    assert (str(planted), "raw") in found
    assert (str(wrapped), "base64") in found
    assert (str(compressed), "decoded-raw") in found
    assert (f"{scratch}:planted.value", "raw") in found
    assert search_bytes(base64.urlsafe_b64encode(b"k=" + saved_key.encode()), keys, "x")
    assert search_bytes(quote(f"?api_key={saved_key}").encode(), keys, "x")
    for path in (planted, wrapped, compressed, *demo_run.root.glob("scratch.db*")):
        path.unlink()

    # The search is meaningful: the run kept flow runs, task runs, logs of the client and httpx,
    # artifacts, events and persisted results.
    db = sqlite3.connect(f"file:{home / 'prefect.db'}?mode=ro", uri=True)
    try:
        counts = {
            t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]  # noqa: S608
            for t in ("flow_run", "task_run", "log", "artifact", "events", "block_document")
        }
        loggers = {r[0] for r in db.execute("SELECT DISTINCT name FROM log")}
        parameters = [json.loads(r[0]) for r in db.execute("SELECT parameters FROM flow_run")]
    finally:
        db.close()
    assert all(counts.values()), counts
    assert "prefect_iterable.api" in loggers, loggers  # the client's request lines reached Prefect
    assert b"httpcore" in demo_run.stderr and b"httpx" in demo_run.stderr  # and stderr, at DEBUG
    assert list((home / "storage").iterdir()), "no persisted results to search"
    # Every flow got the block's name, or the block itself stored masked; never the key.
    masked = [
        value["api_key"]
        for params in parameters
        for value in params.values()
        if isinstance(value, dict) and "api_key" in value
    ]
    assert set(masked) <= {"**********"}, masked
    assert {p.get("credentials_block") for p in parameters} <= {DEMO_BLOCK, None}

    # The search itself: PREFECT_HOME, the demo's output, its working directory, its output.
    hits = search_tree(demo_run.root, keys)
    hits += search_bytes(demo_run.stdout, keys, "stdout")
    hits += search_bytes(demo_run.stderr, keys, "stderr")
    assert not hits, "\n".join(f"{h.where} ({h.form})" for h in hits)

    # Last, because the search above is worth reporting even when the demo fails.
    assert demo_run.returncode == 0, demo_run.stderr.decode()[-3000:]
    summary = json.loads((demo_run.output / "summary.json").read_text())
    assert {"bulk_import", "campaign_launch", "gdpr_forget", "export_archive"} <= set(summary)


# ---- a block-typed flow parameter --------------------------------------------------------


@flow(name="secrets-audit-block-parameter")
def uses_a_block(credentials: IterableCredentials) -> int:
    """Takes the block itself as a parameter, as a UI block picker or a deployment would."""
    with credentials.get_client() as client:
        return len(client.call("ITERABLE_LIST_CHANNELS")["channels"])


def _stored_parameters(flow_run_id: Any) -> dict[str, Any]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).parameters


def test_a_block_parameter_is_stored_masked_when_called_directly(
    prefect_server, credentials, api_key, sandbox
):
    state = uses_a_block(credentials, return_state=True)
    assert state.is_completed() and state.result() >= 0  # the flow did get the real key
    stored = _stored_parameters(state.state_details.flow_run_id)
    assert stored["credentials"]["api_key"] == "**********"
    assert api_key not in json.dumps(stored)


@pytest.mark.parametrize("by", ["block_document_id", "block_document_slug"])
def test_a_block_parameter_is_stored_as_a_reference(
    by, prefect_server, credentials, api_key, sandbox
):
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    name = f"audit-{uuid.uuid4().hex[:12]}"
    block_id = credentials.save(name, overwrite=True)
    ref = str(block_id) if by == "block_document_id" else f"iterable-credentials/{name}"
    parameters = {"credentials": {"$ref": {by: ref}}}
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run(uses_a_block, parameters=parameters)
    # What a worker does for a deployment run: run the stored flow run; the engine loads the block.
    assert run_flow(uses_a_block, flow_run=flow_run) >= 0
    stored = _stored_parameters(flow_run.id)
    assert stored == parameters
    assert api_key not in json.dumps(stored)


# ---- task run names ----------------------------------------------------------------------


def _all_tasks() -> dict[str, Any]:
    from prefect import Task

    from prefect_iterable import flows, tasks
    from prefect_iterable.flows import (
        bulk_import,  # noqa: F401
        campaign_launch,  # noqa: F401
        emergency_stop,  # noqa: F401
        export_archive,  # noqa: F401
        gdpr,  # noqa: F401
    )

    found: dict[str, Any] = dict(tasks.ACTIONS)
    for module in (
        flows.bulk_import,
        flows.campaign_launch,
        flows.emergency_stop,
        flows.export_archive,
        flows.gdpr,
    ):
        for attr, value in vars(module).items():
            if isinstance(value, Task) and value not in found.values():
                found[f"{module.__name__}.{attr}"] = value
    return found


def test_no_task_run_name_uses_the_credentials_or_a_secret():
    from prefect_iterable import tasks

    assert len(tasks.ACTIONS) == 116
    all_tasks = _all_tasks()
    assert len(all_tasks) > 116  # the flows' own batching tasks are checked too
    with_credentials = 0
    for label, task in all_tasks.items():
        # A task's run name is a template, or our namer over one (it cuts long values short).
        template = getattr(task.task_run_name, "template", task.task_run_name)
        assert template is None or isinstance(template, str), f"{label}: a callable run name"
        fields = {
            re.split(r"[.\[]", field)[0]
            for _, field, _, _ in string.Formatter().parse(template or "")
            if field is not None
        }
        assert not fields & {"credentials", "api_key"}, f"{label}: {template!r}"
        hints = typing.get_type_hints(task.fn, include_extras=True)
        secret = {n for n, hint in hints.items() if re.search(r"SecretStr|Credentials", str(hint))}
        assert not fields & secret, f"{label}: {template!r} names a secret parameter"
        with_credentials += "credentials" in inspect.signature(task.fn).parameters
    assert with_credentials >= 116  # every action task takes a credentials block


# ---- reprs, errors, pickles --------------------------------------------------------------


def _texts(value: Any) -> list[str]:
    """Every way a value is shown or stored: str, repr, args, __dict__, its cause, its pickle."""
    shown = [str(value), repr(value), repr(getattr(value, "args", ())), repr(vars(value))]
    shown.append(pickle.dumps(value).decode("latin-1"))
    cause = getattr(value, "__cause__", None) or getattr(value, "__context__", None)
    if cause is not None:
        shown += [str(cause), repr(cause), repr(vars(cause))]
    return shown


def _raised(client: Any, action: str, **params: Any) -> BaseException:
    with pytest.raises(errors.IterableError) as caught:
        client.call(action, **params)
    return caught.value


FAULTS = [
    ("ITERABLE_LIST_CHANNELS", "error", {"status": 400, "code": "BadParams"}, errors.BadParams),
    ("ITERABLE_LIST_CHANNELS", "error", {"status": 401, "code": "BadApiKey"}, errors.BadApiKey),
    ("ITERABLE_LIST_CHANNELS", "error", {"status": 403, "code": "Forbidden"}, errors.Forbidden),
    ("ITERABLE_LIST_CHANNELS", "error", {"status": 404, "code": "NotFound"}, errors.NotFound),
    ("ITERABLE_LIST_CHANNELS", "error", {"status": 409, "code": "Conflict"}, errors.Conflict),
    ("ITERABLE_LIST_CHANNELS", "html", {"status": 502}, errors.ServerError),
    ("ITERABLE_LIST_CHANNELS", "429", {"retry_after": 3600}, errors.RateLimited),
    ("ITERABLE_LIST_CHANNELS", "500", {}, errors.ServerError),
    ("ITERABLE_LIST_CHANNELS", "503", {}, errors.ServerError),
    ("ITERABLE_SEND_CAMPAIGN", "500", {}, errors.OutcomeUnknown),
    ("ITERABLE_SEND_CAMPAIGN", "reset", {}, errors.OutcomeUnknown),
    ("ITERABLE_LIST_CHANNELS", "reset", {}, errors.TransportError),
]


def test_errors_from_every_kind_of_answer_carry_no_key(credentials, sandbox, project, api_key):
    seen: list[str] = []
    # One attempt per error: retries are tested elsewhere.
    with credentials.get_client(timeout=2.0, retry=RetryPolicy(attempts=1)) as client:
        for action, kind, options, expected in FAULTS:
            count = 5  # more than the client's attempts
            sandbox.inject(action, kind, count, **options)
            params = {"campaign_id": 1} if action == "ITERABLE_SEND_CAMPAIGN" else {}
            error = _raised(client, action, **params)
            sandbox.state.faults.clear()
            assert isinstance(error, expected), (kind, options, repr(error))
            seen += _texts(error)
    for text in seen:
        assert api_key not in text


def test_async_client_and_connect_errors_carry_no_key(credentials, sandbox, project, api_key):
    import asyncio

    async def scenario() -> list[str]:
        async with credentials.get_async_client() as client:
            shown = [repr(client), str(client)]
            await client.call("ITERABLE_LIST_CHANNELS")
            sandbox.inject("ITERABLE_LIST_CHANNELS", "error", 5, status=400, code="BadParams")
            with pytest.raises(errors.BadParams) as caught:
                await client.call("ITERABLE_LIST_CHANNELS")
            return shown + _texts(caught.value)

    seen = asyncio.run(scenario())
    # Nothing listens on this port: a connection error names no key either.
    closed = IterableCredentials(api_key=api_key, base_url="http://127.0.0.1:9", timeout=1.0)
    with closed.get_client(retry=RetryPolicy(attempts=1)) as client:
        seen += _texts(_raised(client, "ITERABLE_LIST_CHANNELS"))
    seen += [repr(AsyncClient(api_key)), repr(closed.get_client())]
    for text in seen:
        assert api_key not in text


def test_a_key_echoed_by_the_server_is_scrubbed_from_the_error(credentials, sandbox, api_key):
    # Iterable does not echo keys, but a proxy or gateway in front of it may.
    sandbox.inject(
        "ITERABLE_LIST_CHANNELS",
        "error",
        5,
        status=401,
        code="BadApiKey",
        msg=f"Invalid API key: {api_key}",
        params={"apiKey": api_key},
    )
    with credentials.get_client() as client:
        error = _raised(client, "ITERABLE_LIST_CHANNELS")
    for text in _texts(error):
        assert api_key not in text


def test_credentials_dump_and_copies_keep_the_key_masked(credentials, api_key):
    shown = [
        repr(credentials.model_copy()),
        json.dumps(credentials.model_dump(mode="json")),
        str(credentials.model_dump()),
        repr(credentials.cache_key()),
        json.dumps(IterableCredentials.model_json_schema()),
    ]
    for text in shown:
        assert api_key not in text
    # ...while the block itself still works: the key is read only to build the client.
    assert credentials.api_key.get_secret_value() == api_key


# ---- a gateway echoing the key, encoded (issue #14 item 9) --------------------------------


def test_a_key_echoed_encoded_by_a_gateway_is_scrubbed(credentials, sandbox, api_key):
    # Every encoding at once, then each alone (a lone form must be caught without the others).
    with credentials.get_client(retry=RetryPolicy(attempts=1)) as client:
        sandbox.inject("ITERABLE_LIST_CHANNELS", "echo", status=502, msg="Bad Gateway")
        errors_seen = [_raised(client, "ITERABLE_LIST_CHANNELS")]
        for form in ("url", "base64", "base64url", "hex", "HEX", "basic", "header", "json"):
            sandbox.inject("ITERABLE_LIST_CHANNELS", "echo", status=502, encodings=[form])
            errors_seen.append(_raised(client, "ITERABLE_LIST_CHANNELS"))
    assert "HEX=" in errors_seen[0].text  # the body is kept, scrubbed, in .text
    for error in errors_seen:
        assert isinstance(error, errors.ServerError)
        # Only the page's first line reaches the message; the echoed headers stay out of it.
        assert "echoed" not in str(error) and len(str(error)) < 400
        for text in _texts(error):
            assert search_bytes(text.encode(), [api_key], "error") == [], text


def test_an_envelope_echoing_the_key_encoded_is_scrubbed(credentials, sandbox, api_key):
    raw = api_key.encode()
    b64 = base64.b64encode(raw).decode()
    sandbox.inject(
        "ITERABLE_LIST_CHANNELS",
        "error",
        status=400,
        code="BadParams",
        msg=f"bad header {b64} / {raw.hex()} / {quote(api_key, safe='')} " + "x" * 5000,
        params={"echo": {"auth": "Basic " + base64.b64encode(b"u:" + raw).decode()}},
    )
    with credentials.get_client(retry=RetryPolicy(attempts=1)) as client:
        error = _raised(client, "ITERABLE_LIST_CHANNELS")
    assert isinstance(error, errors.BadParams) and "bad header" in str(error)
    assert len(str(error)) < 400  # Iterable's msg, bounded
    for text in _texts(error):
        assert search_bytes(text.encode(), [api_key], "error") == [], text


def test_an_echoed_key_reaches_no_prefect_log_state_or_event(
    prefect_server, credentials, sandbox, api_key
):
    """A task failing on an echoing gateway: Prefect's logs, states and events hold no form."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    from prefect_iterable.tasks.channels import list_channels

    # A 4xx is final for the client; no task retries: one failure, reported once.
    sandbox.inject("ITERABLE_LIST_CHANNELS", "echo", 5, status=400, msg="Bad Gateway")

    @flow(name="echoing-gateway")
    def echoing() -> Any:
        return list_channels.with_options(retries=0)(credentials=credentials)

    state = echoing(return_state=True)
    assert state.is_failed()
    run_id = state.state_details.flow_run_id
    shown: list[str] = [state.message or ""]
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        shown += [log.message for log in logs]
        flow_runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
        shown += [run.model_dump_json() for run in flow_runs]
        for task_run in client.read_task_runs():
            if task_run.flow_run_id == run_id:
                shown.append(task_run.model_dump_json())
                shown += [s.model_dump_json() for s in client.read_task_run_states(task_run.id)]
        shown += [s.model_dump_json() for s in client.read_flow_run_states(run_id)]
        resource = {"any_resource": {"id": [f"prefect.flow-run.{run_id}"]}}
        for _ in range(40):  # events reach the server's store a little after the run ends
            events = client._client.post("/events/filter", json={"filter": resource}).json()
            if "Bad Gateway" in json.dumps(events):
                break
            time.sleep(0.25)
        shown.append(json.dumps(events))
    assert "Bad Gateway" in shown[-1]  # the flow run's Failed event carries the error message
    assert any("Bad Gateway" in text for text in shown)  # the failure did reach Prefect
    for text in shown:
        assert search_bytes(text.encode(), [api_key], "prefect") == [], text[:300]
