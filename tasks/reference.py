"""``python -m prefect_iterable.tasks.reference``: write ``docs/ACTIONS.md``, the reference of every task.

Generated from the catalog, the task registry and the tasks' own annotations, so it cannot drift:
a test regenerates it and compares. What a parameter accepts is read from its annotation's JSON
schema, and which spellings a date parameter takes is found by validating each spelling
against the annotation, so a change to the types shows here on the next regeneration.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from prefect_iterable.api.catalog import ACTIONS, Action, ResponseKind
from prefect_iterable.api.models import BulkResult, Rejection
from prefect_iterable.tasks import ACTIONS as TASKS
from prefect_iterable.tasks._core import _LOCAL_PARAMS
from prefect_iterable.tasks._exported import BYTES_LIMIT, RECORDS_LIMIT

OUTPUT = Path(__file__).parents[1] / "docs" / "ACTIONS.md"

#: One instant (2024-01-15 15:30 UTC) in each spelling a user may reach for.
DATE_SPELLINGS: tuple[tuple[str, Any], ...] = (
    ("`datetime`", datetime.fromisoformat("2024-01-15T10:30:00-05:00")),
    ("ISO 8601 `2024-01-15T10:30:00-05:00`", "2024-01-15T10:30:00-05:00"),
    ("ISO 8601 `2024-01-15T15:30:00Z`", "2024-01-15T15:30:00Z"),
    ("Iterable's `2024-01-15 10:30:00 -05:00`", "2024-01-15 10:30:00 -05:00"),
    ("Iterable's `2024-01-15 15:30:00 +0000`", "2024-01-15 15:30:00 +0000"),
    ("no offset (UTC) `2024-01-15 15:30:00`", "2024-01-15 15:30:00"),
    ("epoch milliseconds `1705332600000`", 1705332600000),
)


def _schema(annotation: Any) -> dict[str, Any] | None:
    try:
        with warnings.catch_warnings():  # pydantic's notes on field metadata, not ours to show
            warnings.simplefilter("ignore")
            return TypeAdapter(annotation).json_schema(mode="validation")
    except Exception:  # a type JSON Schema cannot describe: the annotation's name will do
        return None


def _describe(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """One JSON schema, in words."""
    if "$ref" in schema or "properties" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1] if "$ref" in schema else schema.get("title", "")
        target = defs.get(name, {}) if "$ref" in schema else schema
        fields = [
            f"`{key}`" + ("" if key in target.get("required", ()) else "?")
            for key in target.get("properties", {})
        ]
        return f"object {name} ({', '.join(fields)})" if fields else f"object {name}"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return " or ".join(dict.fromkeys(_describe(s, defs) for s in options))
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any JSON value")
    parts = [kind if isinstance(kind, str) else " or ".join(kind)]
    if kind == "array":
        parts = [f"list of {_describe(schema.get('items', {}), defs)}"]
    elif kind == "object" and "additionalProperties" in schema:
        values = schema["additionalProperties"]
        plain = isinstance(values, bool) or values == {}
        parts = ["object" if plain else f"object of {_describe(values, defs)}"]
    if "format" in schema:
        parts.append(schema["format"])
    bounds = [
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
    ]
    parts += [f"{word} {schema[key]}" for key, word in bounds if key in schema]
    if "pattern" in schema:
        parts.append(f"matching `{schema['pattern']}`".replace("|", "\\|"))
    return ", ".join(parts)


def _is_date(annotation: Any) -> bool:
    if annotation is datetime:
        return True
    return any(_is_date(arg) for arg in typing.get_args(annotation))


def _date_type(annotation: Any) -> Any:
    """The date type inside a parameter's annotation, without rules tying it to other parameters."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated and args[0] is datetime:
        return annotation
    if annotation is datetime:
        return annotation
    for arg in args:
        if _is_date(arg):
            return _date_type(arg)
    return annotation


def _date_formats(annotation: Any) -> str:
    """Which spellings the annotation accepts, and what it sends (found by trying them)."""
    adapter = TypeAdapter(_date_type(annotation))
    accepted, sent = [], None
    for label, value in DATE_SPELLINGS:
        try:
            checked = adapter.validate_python(value)
        except Exception:
            continue
        accepted.append(label)
        if sent is None and checked is not None:
            sent = adapter.dump_python(checked, mode="json")
    text = "a date: " + (", ".join(accepted) if accepted else "none of the usual spellings")
    return text + (f"; sent as `{sent}`" if isinstance(sent, str) else "")


def _accepts(annotation: Any) -> str:
    if _is_date(annotation):
        return _date_formats(annotation)
    schema = _schema(annotation)
    if schema is None:
        return getattr(annotation, "__name__", str(annotation)).replace("|", "\\|")
    return _describe(schema, schema.get("$defs", {})).replace("\n", " ")


def _type_name(annotation: Any) -> str:
    """The annotation as a reader writes it: constraints left to the accepts column."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(dict.fromkeys(_type_name(arg) for arg in args))
    if origin is typing.Literal:
        return "Literal"
    if annotation is type(None):
        return "None"
    if origin is not None:
        inner = ", ".join(_type_name(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _returns(action: Action, task: Any) -> str:
    if action.response is ResponseKind.BULK:
        return "`BulkResult` (partial success, see above)"
    if action.response in (ResponseKind.CSV_STREAM, ResponseKind.NDJSON_STREAM):
        return (
            "`StreamSummary` with `destination`; without it the records "
            f"(at most {RECORDS_LIMIT:,} records, {BYTES_LIMIT // 2**20} MiB)"
        )
    annotation = typing.get_type_hints(task.fn, include_extras=True).get("return", Any)
    return f"`{_type_name(annotation)}`"


def _parameters(action: Action, task: Any) -> list[str]:
    hints = typing.get_type_hints(task.fn, include_extras=True)
    fields = task.input_model.model_fields
    rows = []
    for name in inspect.signature(task.fn).parameters:
        if name in _LOCAL_PARAMS:
            continue
        param = action.param(name)
        annotation = hints[name]
        required = "yes" if fields[name].is_required() else "no"
        if name in task.one_of:
            others = ", ".join(f"`{n}`" for n in task.one_of if n != name)
            required = f"one of it and {others}" if task.need_one else required
        rows.append(
            f"| `{name}` | `{param.wire}` | {param.location.value} | {_type_name(annotation)} "
            f"| {required} | {_accepts(annotation)} |"
        )
    return rows


def _partial_success() -> list[str]:
    fields = ", ".join(f"`{name}`" for name in BulkResult.model_fields)
    rejection = ", ".join(f"`{name}`" for name in Rejection.model_fields)
    return [
        "## Partial success",
        "",
        "Bulk actions answer 200 even when Iterable refused some records. Their tasks return a",
        f"`BulkResult` ({fields}); each refused record is a `Rejection` ({rejection}), the reason",
        "being the name of the list Iterable reported it in (`invalidEmails`, `notFoundUserIds`,",
        "…). Any other answer that does not match its model is returned anyway: unknown fields are",
        "kept, a value of an unexpected type is kept as received, and the task's log names the",
        "field.",
        "",
    ]


def render() -> str:
    lines = [
        "# Iterable actions",
        "",
        "Every Iterable action as a Prefect task. Generated by `python -m prefect_iterable.tasks.reference` from the",
        "catalog (`iterable_api/_actions.py`) and the tasks' annotations; do not edit by hand.",
        "",
        "Side effect: **read**; **write** (repeatable, retried); **send** (Iterable cannot deduplicate",
        "a repeat, so it is retried only when the request provably never arrived). Tier: the",
        "permission the credentials block must grant.",
        "",
        "| identifier | task | method and path | rate limit | side effect | tier |",
        "|---|---|---|---|---|---|",
    ]
    for action in sorted(ACTIONS, key=lambda a: a.id):
        task = TASKS.get(action.id)
        module = task.fn.__module__ if task is not None else None
        name = f"`{module}.{action.name}`" if module else "(missing)"
        limit = str(action.limit) if action.limit else "not documented"
        if action.daily_cap:
            limit += f"; {action.daily_cap.requests} per 24 h"
        effect = action.effect.value + (
            f" (write with `{action.dedupe_by}`)" if action.dedupe_by else ""
        )
        tier = action.tier.value if action.tier else ""
        if action.sends_unless_false:
            tier += f" (send unless `{action.sends_unless_false}` is false)"
        lines.append(
            f"| `{action.id}` | {name} | `{action.method} {action.path}` | {limit} | {effect} "
            f"| {tier} |"
        )
    lines += ["", *_partial_success(), "## Parameters", ""]
    lines += [
        "Every parameter of every task: its Python name, its name on the wire, where it goes, its",
        "type, whether it is required and what it accepts. For a date, the spellings listed are the",
        "ones the task accepts (each tried against the parameter's type) and the example shows",
        "what is sent. `credentials` (every task) and `destination` (exports) are local.",
        "",
    ]
    for action in sorted(ACTIONS, key=lambda a: a.id):
        task = TASKS.get(action.id)
        if task is None:
            continue
        lines += [
            f"### `{action.id}`: `{action.name}`",
            "",
            f"`{action.method} {action.path}`; returns {_returns(action, task)}.",
            "",
        ]
        rows = _parameters(action, task)
        if rows:
            lines += [
                "| parameter | wire name | in | type | required | accepts |",
                "|---|---|---|---|---|---|",
                *rows,
            ]
        else:
            lines.append("No parameters.")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
