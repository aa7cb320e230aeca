"""The one request path behind all 116 tasks.

A task module declares each action as a typed, documented stub::

    @iterable_task("ITERABLE_ABORT_CAMPAIGN", run_name="abort-campaign-{campaign_id}")
    def abort_campaign(
        campaign_id: PositiveInt, *, credentials: IterableCredentials | None = None
    ) -> ApiResponse:
        \"\"\"Abort a running campaign …\"\"\"

The signature is the request model: ``iterable_task`` validates the arguments against it (so bad
input fails before any request, naming the parameter), serialises them with their annotations'
serialisers, sends the catalog action through the block's shared client (which refuses a tier
the block does not grant) and reads the answer into the return annotation. Prefect sees the stub's own signature and docstring,
so the UI form and the IDE show the real parameters.
"""

from __future__ import annotations

import dis
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar, cast

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticSerializationError

from prefect_iterable.api import Client
from prefect_iterable.api._requests import json_problem, path_problem
from prefect_iterable.api.catalog import Action, Location, ResponseKind, get_action
from prefect_iterable.api.errors import InputValidationError
from prefect_iterable.api.files import RecordFile, RecordKind
from prefect_iterable.api.models import BulkResult, read_result
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.tasks._exported import read_records
from prefect_iterable.tasks._records import refused_records

__all__ = ["ACTIONS", "StreamSummary", "iterable_task", "resolve_credentials"]


class StreamSummary(BaseModel):
    """Where a streamed answer was written, and what it held."""

    path: str
    bytes: int
    records: int
    sha256: str


#: Every task, by its action id; filled as the task modules are imported.
ACTIONS: dict[str, Task[..., Any]] = {}

P = ParamSpec("P")
R = TypeVar("R")


def resolve_credentials(credentials: IterableCredentials | None) -> IterableCredentials:
    """The given block, or one built from ``ITERABLE_*`` environment variables."""
    return credentials if credentials is not None else IterableCredentials.from_env()


# What an empty body compiles to: a stub is its signature and docstring (or ``...``), nothing more.
_EMPTY_BODY_OPS = {"RESUME", "NOP", "RETURN_CONST", "LOAD_CONST", "RETURN_VALUE"}


def _refuse_a_body(fn: Callable[..., Any]) -> None:
    """Refuse a stub with code in its body: the task never runs it, so it would be lost silently."""
    for op in dis.get_instructions(fn):
        if op.opname not in _EMPTY_BODY_OPS or (op.opname.endswith("CONST") and op.argval):
            line = getattr(getattr(op, "positions", None), "lineno", None)  # Python 3.11+
            raise TypeError(
                f"{fn.__name__}: an iterable_task stub has no body (its signature is the request "
                f"and the catalog sends it); line {line} would never run"
            )


# Parameters a task may take besides the action's own: where a streamed answer is written.
_LOCAL_PARAMS = {"credentials", "destination"}


def _path_segment(name: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        problem = None if value is None else path_problem(name, value)
        if problem:
            raise ValueError(problem[1])
        return value

    return check


def _input_model(
    fn: Callable[..., Any], action: Action, one_of: tuple[str, ...], need_one: bool
) -> type[BaseModel]:
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(fn).parameters.items():
        if name in _LOCAL_PARAMS:
            continue
        if not action.has_param(name):
            raise TypeError(f"{fn.__name__}: parameter {name!r} is not in {action.id}")
        default = ... if param.default is inspect.Parameter.empty else param.default
        hint = hints[name]
        if action.param(name).location is Location.PATH:
            # The client's rule, checked with the others, so the error names the parameter.
            hint = Annotated[hint, AfterValidator(_path_segment(name))]
        fields[name] = (hint, default)
    validators: dict[str, Any] = {}
    if one_of:
        if not need_one:
            raise TypeError(f"{fn.__name__}: one_of without need_one checks nothing")

        # At least one; several are sent as given: Iterable accepts both identifiers (hybrid
        # projects need both) and documents which one wins, so refusing both is stricter than it.
        def check_one_of(model: BaseModel) -> BaseModel:
            if all(getattr(model, n) is None for n in one_of):
                raise ValueError(f"one of {', '.join(one_of)} is required")
            return model

        validators["check_one_of"] = model_validator(mode="after")(check_one_of)
    # NaN and infinity stay floats when dumped, so that the client refuses them by name instead
    # of pydantic quietly sending null.
    config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", ser_json_inf_nan="constants")
    return create_model(
        f"{action.name}_args", __config__=config, __validators__=validators, **fields
    )


def _dump(checked: BaseModel, action: Action) -> dict[str, Any]:
    """The validated arguments as JSON values; a value JSON cannot carry is named, not crashed on.

    Free-form objects (``data_fields``, payloads) accept anything pydantic can hold, so bytes or
    arbitrary objects only fail here.
    """
    try:
        # JSON mode replaces a lone surrogate in a dict key with U+FFFD: look before it does.
        python = checked.model_dump(by_alias=True, exclude_none=True)
        values = checked.model_dump(mode="json", by_alias=True, exclude_none=True)
    except (PydanticSerializationError, UnicodeError, ValueError, TypeError):
        values = None
    if values is not None:
        problems = [
            p
            for name, v in values.items()
            if (
                p := json_problem(python.get(name), name, other_types=True) or json_problem(v, name)
            )
        ]
        if problems:
            raise InputValidationError(action.id, problems)
        return values
    errors = []
    for name in type(checked).model_fields:
        try:
            checked.model_dump(mode="json", include={name})
        except (PydanticSerializationError, UnicodeError, ValueError, TypeError) as exc:
            errors.append((name, f"not a JSON value: {str(exc).splitlines()[0]}"))
    raise InputValidationError(action.id, errors or [("input", "not JSON serialisable")])


def _write_stream(
    client: Client, action: Action, values: dict[str, Any], destination: Any
) -> StreamSummary:
    """Stream the answer into ``destination``, hashing and counting records as it goes."""
    kind: RecordKind = "csv" if action.response is ResponseKind.CSV_STREAM else "json"
    with client.stream(action, values) as body, RecordFile(destination, kind) as out:
        for chunk in body.iter_bytes():
            out.write(chunk)
    return StreamSummary(path=str(out.path), bytes=out.size, records=out.records, sha256=out.sha256)


def _with_refused_records(result: BulkResult, checked: BaseModel) -> BulkResult:
    """A bulk result that also names the records kept out of the request (see ``_records``)."""
    refused = refused_records(checked)
    if refused:
        # Counts only: the records name people.
        get_run_logger().warning("%s record(s) were not sent; see the result", len(refused))
    return result.with_refused(refused)


#: How much of each parameter value a task run name shows.
_RUN_NAME_VALUE_CHARS = 64


class _Shown(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _run_namer(template: str) -> Callable[..., str]:
    """The task run name for a call: ``template`` over its parameters, each value cut short.

    Prefect names the run before the task validates anything, so a value of megabytes would fail
    there (``EventTooLarge``) instead of by name; a lone surrogate would not encode.
    """

    def name(parameters: dict[str, Any]) -> str:
        shown = _Shown()
        for key, value in parameters.items():
            text = str(value)[:_RUN_NAME_VALUE_CHARS]
            shown[key] = text.encode("utf-8", "backslashreplace").decode()
        return template.format_map(shown)

    name.template = template  # type: ignore[attr-defined]  # what audits read
    return name


def iterable_task(
    action_id: str,
    *,
    run_name: str | None = None,
    one_of: tuple[str, ...] = (),
    need_one: bool = False,
    **task_options: Any,
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Turn a typed stub into the Prefect task that performs ``action_id``.

    Args:
        action_id: the catalog id, ``ITERABLE_…``.
        run_name: a ``task_run_name`` template over non-secret parameters.
        one_of: parameters of which at least one must be given (``("email", "user_id")``);
            several may be, and are all sent.
        need_one: must be true with ``one_of`` (kept so that a stub states the rule it asks).
        task_options: further ``@task`` options. Tasks do not retry: the client already retried
            what another attempt can fix, and refused what it cannot (a daily cap, a send whose
            outcome is unknown).

    A streaming action (exports) takes a ``destination``: given, the answer is streamed into that
    file and the task returns a ``StreamSummary`` (path, bytes, records, SHA-256); omitted, the
    task returns the records themselves, up to the limits of ``prefect_iterable.tasks._exported``.
    """
    action = get_action(action_id)

    streams = action.response in (ResponseKind.CSV_STREAM, ResponseKind.NDJSON_STREAM)

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        _refuse_a_body(fn)
        model = _input_model(fn, action, one_of, need_one)
        if streams and "destination" not in inspect.signature(fn).parameters:
            raise TypeError(f"{fn.__name__}: {action.id} streams its answer; take a destination")
        signature = inspect.signature(fn)
        result_type = typing.get_type_hints(fn, include_extras=True).get("return", Any)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            arguments = dict(bound.arguments)
            credentials = resolve_credentials(arguments.pop("credentials", None))
            destination = arguments.pop("destination", None)
            try:
                checked = model.model_validate(arguments)
            except ValidationError as exc:
                errors = [
                    (".".join(str(p) for p in e["loc"]) or "input", e["msg"]) for e in exc.errors()
                ]
                raise InputValidationError(action.id, errors) from None
            values = _dump(checked, action)
            get_run_logger().info("%s %s", action.id, action.endpoint)
            if streams and destination is None:
                return read_records(credentials.get_client(), action, values)
            if streams:
                return _write_stream(credentials.get_client(), action, values, destination)
            # The block's client refuses a tier the block does not grant, before sending.
            answer = credentials.get_client().call(action, values)
            # A 2xx answer never fails because of its shape: what does not fit is kept and named.
            result, notes = read_result(result_type, answer)
            for note in notes:
                get_run_logger().warning("%s answer: %s", action.id, note)
            if isinstance(result, BulkResult):
                return _with_refused_records(result, checked)
            return result

        options: dict[str, Any] = {
            "name": action.name.replace("_", "-"),
            "task_run_name": _run_namer(run_name) if run_name else action.name.replace("_", "-"),
            "cache_policy": NO_CACHE,
            # The client's RetryPolicy is the one retry layer (see prefect_iterable.api.retrying).
            "retries": 0,
            "tags": ["iterable", f"iterable-{action.tier.value if action.tier else 'write'}"],
        }
        built = task(**(options | task_options))(run)
        # What the fuzz tests and tools need to check a task without calling it.
        built.action = action  # type: ignore[attr-defined]
        built.input_model = model  # type: ignore[attr-defined]
        built.one_of = one_of  # type: ignore[attr-defined]
        built.need_one = need_one  # type: ignore[attr-defined]
        ACTIONS[action.id] = built
        # The task takes the stub's parameters and returns its annotation (validated above).
        return cast("Task[P, R]", built)

    return decorate
