"""Hypothesis strategies for task inputs, derived from the task signatures' annotations.

``plausible(annotation)`` draws values of the annotated type that often satisfy its constraints
(patterns, bounds, lengths, literals, nested request models), so that inputs reach past the first
validator; ``junk()`` draws adversarial values of any type. ``arguments(fn)`` mixes the two into a
call's keyword arguments, sometimes leaving out a required parameter or adding an unknown one, and
says which it did so a test can tell an argument-binding ``TypeError`` from a real crash.
"""

from __future__ import annotations

import enum
import functools
import inspect
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import annotated_types as at
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic.types import StringConstraints

__all__ = ["Call", "LOCAL_PARAMS", "arguments", "json_values", "junk", "plausible"]

LOCAL_PARAMS = {"credentials", "destination"}

_NoneType = type(None)

#: Scalars JSON can carry (and the odd ones Python cannot send as JSON numbers).
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)

json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)

_offsets = st.sampled_from(
    [None, timezone.utc, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-30))]
)

#: Strings that have broken serialisers and URL builders before: NUL, surrogates, slashes,
#: percent signs, CR/LF, very long, right-to-left and astral characters, padding.
_nasty_text = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "\ud800",
            "x\udfffy",
            "../..",
            "/",
            "a/b",
            "%2F",
            "%",
            "?a=b&c",
            "#frag",
            "\r\n",
            "a\nb",
            '"',
            "\\",
            "\u202e",
            "\U0001f600",
            "ｅｍａｉｌ@ｅｘａｍｐｌｅ.ｃｏｍ",
            " a@example.com ",
            "a@b.c",
            "a" * 10_000,
            "é" * 300,
            "NaN",
            "-1",
            "0",
            "1e309",
            "true",
            "null",
            "America",
            "America/",
            "/etc/passwd",
            "Etc/../UTC",
            "UTC\x00",
            "2024-01-01T00:00:00Z",
        ]
    ),
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8", exclude_categories=()), max_size=20),
    st.text(st.characters(categories=["Cs", "Cc", "Zs", "Mn"]), max_size=10),
)

_extreme_datetimes = st.one_of(
    st.sampled_from(
        [
            datetime.min,
            datetime.max,
            datetime.min.replace(tzinfo=timezone(timedelta(hours=1))),
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))),
            datetime.min.replace(tzinfo=timezone.utc),
            datetime.max.replace(tzinfo=timezone.utc),
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59))),
            datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
        ]
    ),
    st.datetimes(timezones=_offsets),
)

#: Python values with no JSON form, or whose JSON form loses information.
_odd_leaves = st.sampled_from(
    [
        float("nan"),
        float("inf"),
        b"bytes",
        b"\xff",
        {1, 2},
        (1, "a"),
        1 + 2j,
        Decimal("1.5"),
        datetime(2024, 1, 1, tzinfo=timezone.utc),
        date(2024, 1, 1),
        object(),
        {"nested": None},
        {1: "int key"},
    ]
)

#: Adversarial values of any type: what a form, a JSON parameter or a careless caller may pass.
junk: st.SearchStrategy[Any] = st.deferred(
    lambda: st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**100, -(10**100)]),
        st.integers(),
        st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 0.5, 1.0]),
        st.floats(),
        _nasty_text,
        st.binary(max_size=10),
        st.sampled_from([Decimal("1"), Decimal("NaN"), Decimal("-Infinity"), 1 + 2j]),
        _extreme_datetimes,
        st.dates(),
        st.sampled_from([object(), ..., int, SecretStr("s3cret"), b"\xff", bytearray(b"x")]),
        st.sets(st.integers(), max_size=3),
        st.tuples(st.integers(), st.text(max_size=3)),
        st.lists(json_values, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), _nasty_text), json_values, max_size=4),
        json_values,
        st.lists(st.deferred(lambda: junk), max_size=3),
        st.dictionaries(st.text(max_size=8), st.deferred(lambda: junk), max_size=3),
    )
)


@dataclass
class _Constraints:
    ge: Any = None
    le: Any = None
    gt: Any = None
    lt: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    strip: bool = False


def _collect(metadata: typing.Iterable[Any], into: _Constraints) -> None:
    for item in metadata:
        if isinstance(item, FieldInfo):
            _collect(item.metadata, into)
        elif isinstance(item, StringConstraints):
            into.min_length = item.min_length if item.min_length is not None else into.min_length
            into.max_length = item.max_length if item.max_length is not None else into.max_length
            into.pattern = item.pattern or into.pattern
            into.strip = into.strip or bool(item.strip_whitespace)
        elif isinstance(item, at.Ge):
            into.ge = item.ge
        elif isinstance(item, at.Le):
            into.le = item.le
        elif isinstance(item, at.Gt):
            into.gt = item.gt
        elif isinstance(item, at.Lt):
            into.lt = item.lt
        elif isinstance(item, at.MinLen):
            into.min_length = item.min_length
        elif isinstance(item, at.MaxLen):
            into.max_length = item.max_length


def _int_strategy(c: _Constraints) -> st.SearchStrategy[int]:
    low = c.ge if c.ge is not None else (c.gt + 1 if c.gt is not None else None)
    high = c.le if c.le is not None else (c.lt - 1 if c.lt is not None else None)
    inside = st.integers(min_value=low, max_value=high if high is not None else (low or 0) + 10**6)
    edges = [v for v in (low, high) if v is not None]
    around = [v + d for v in edges for d in (-1, 1)]
    return st.one_of(inside, st.sampled_from(edges + around) if edges else st.nothing())


def _str_strategy(c: _Constraints) -> st.SearchStrategy[str]:
    if c.pattern:
        base: st.SearchStrategy[str] = st.from_regex(c.pattern, fullmatch=True)
        if c.max_length is not None or c.min_length is not None:
            low, high = c.min_length or 0, c.max_length
            base = base.filter(lambda s: len(s) >= low and (high is None or len(s) <= high))
    else:
        high = c.max_length if c.max_length is not None else 30
        base = st.text(min_size=c.min_length or 0, max_size=high)
        if c.max_length is not None:
            base = st.one_of(base, st.just("x" * (c.max_length + 1)), st.just("é" * c.max_length))
        # Free text is where NUL, surrogates, slashes and huge strings get through: try them often.
        base = st.one_of(base, _nasty_text)
    if c.strip:
        base = st.one_of(base, base.map(lambda s: f"  {s}\t"))
    return base


def _email() -> st.SearchStrategy[str]:
    return st.one_of(st.emails(), st.sampled_from(["a@example.com", "user+tag@sub.example.org"]))


def _model_strategy(model: type[BaseModel], depth: int) -> st.SearchStrategy[Any]:
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if info.metadata:
            annotation = typing.Annotated[(annotation, *info.metadata)]  # type: ignore[misc]
        strategy = plausible(annotation, depth=depth + 1, name=name)
        key = name
        if info.alias and info.alias != name:
            # Either spelling is accepted (populate_by_name); send the wire one sometimes.
            key = name if info.alias is None else info.alias
        (required if info.is_required() else optional)[key] = strategy
    as_dict = st.fixed_dictionaries(required, optional=optional)
    return st.one_of(as_dict, as_dict.map(lambda d: _try_build(model, d)))


def _try_build(model: type[BaseModel], values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except Exception:  # an invalid draw stays a dict: the task must reject it by name
        return values


_NAME_HINTS: dict[str, Any] = {
    "email": _email,
    "recipient_email": _email,
    "destination_email": _email,
    "current_email": _email,
    "new_email": _email,
}


def plausible(annotation: Any, *, depth: int = 0, name: str = "") -> st.SearchStrategy[Any]:
    """Values of ``annotation``'s type, usually within its constraints, sometimes just outside."""
    if depth > 4:
        return st.none()
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        base, *metadata = args
        c = _Constraints()
        _collect(metadata, c)
        return _constrained(base, c, depth, name)
    return _constrained(annotation, _Constraints(), depth, name)


def _constrained(tp: Any, c: _Constraints, depth: int, name: str) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        base, *metadata = args
        _collect(metadata, c)
        return _constrained(base, c, depth, name)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[_constrained(a, _copy(c), depth, name) for a in args])
    if tp is _NoneType or tp is None:
        return st.none()
    if origin is typing.Literal:
        return st.sampled_from(args)
    if tp is Any:
        # What a caller may put in a free-form object: JSON, and the Python values JSON lacks.
        return st.one_of(json_values, json_values, _odd_leaves)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.one_of(st.sampled_from(list(tp)), st.sampled_from([m.value for m in tp]))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _model_strategy(tp, depth)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _int_strategy(c)
    if tp is float:
        low = c.ge if c.ge is not None else c.gt
        high = c.le if c.le is not None else c.lt
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if tp is str:
        hint = _NAME_HINTS.get(name)
        if hint is not None and not c.pattern:
            return st.one_of(hint(), _str_strategy(c))
        return _str_strategy(c)
    if tp is SecretStr:
        return st.one_of(st.text(max_size=20), st.text(max_size=20).map(SecretStr))
    if tp is datetime:
        near = st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_offsets
        )
        soon = st.integers(min_value=-3600, max_value=30 * 86400).map(
            lambda s: datetime.now(timezone.utc) + timedelta(seconds=s)
        )
        return st.one_of(near, soon, soon.map(lambda d: d.isoformat()))
    if tp is date:
        return st.dates()
    if origin in (list, typing.List, tuple, set, frozenset) or tp in (list, tuple, set):
        inner = plausible(args[0], depth=depth + 1, name=name) if args else json_values
        high = min(c.max_length + 1, 6) if c.max_length is not None else 5
        low = min(c.min_length or 0, high)
        return st.lists(inner, min_size=low, max_size=high)
    if origin is dict or tp is dict:
        key_type, value_type = args if args else (str, Any)
        keys = plausible(key_type, depth=depth + 1)
        values = plausible(value_type, depth=depth + 1)
        return st.dictionaries(keys, values, min_size=c.min_length or 0, max_size=4)
    try:
        return st.from_type(tp)
    except Exception:  # a type hypothesis cannot build: junk still exercises it
        return junk


def _copy(c: _Constraints) -> _Constraints:
    return _Constraints(**c.__dict__)


@dataclass
class Call:
    """Keyword arguments for one call, and what is wrong with them at the signature level."""

    kwargs: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def binds(self) -> bool:
        return not self.missing and not self.unknown


_UNKNOWN_NAMES = st.sampled_from(["api_key", "campaignId", "unknown", "extra_param", "kwargs", "x"])


@functools.cache
def _parameter_strategies(fn: Any) -> tuple[tuple[str, bool, st.SearchStrategy[Any]], ...]:
    """(name, required, plausible values) per parameter, built once per function."""
    hints = typing.get_type_hints(fn, include_extras=True)
    return tuple(
        (name, param.default is inspect.Parameter.empty, plausible(hints[name], name=name))
        for name, param in inspect.signature(fn).parameters.items()
        if name not in LOCAL_PARAMS
    )


def arguments(
    fn: Any, *, junk_rate: float = 0.25, allow_bad_signature: bool = True
) -> st.SearchStrategy[Call]:
    """Keyword arguments for ``fn``: plausible or junk values, sometimes a missing or extra name."""
    params = _parameter_strategies(fn)
    names = {name for name, _, _ in params}
    junk_per_mille = int(junk_rate * 1000)

    @st.composite
    def draw_call(draw: st.DrawFn) -> Call:
        call = Call({})
        for name, required, strategy in params:
            if not required and not draw(st.booleans()):
                continue  # leave the optional parameter at its default
            if required and allow_bad_signature and draw(st.integers(0, 19)) == 0:
                call.missing.append(name)
                continue
            use_junk = draw(st.integers(0, 999)) < junk_per_mille
            call.kwargs[name] = draw(junk if use_junk else strategy, label=name)
        if allow_bad_signature and draw(st.integers(0, 14)) == 0:
            extra = draw(_UNKNOWN_NAMES.filter(lambda n: n not in names))
            call.kwargs[extra] = draw(junk)
            call.unknown.append(extra)
        return call

    return draw_call()
