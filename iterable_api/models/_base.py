"""Base classes for Iterable's request and response schemas.

Responses are read tolerantly: Iterable adds fields, drops fields on old objects and changes a
field's type without notice, and a successful answer must never fail because of its shape. So
``IterableModel`` validates an answer as usual and, only when that fails, again field by field:
a field that does not fit is kept as received (a required one that is absent becomes ``None``)
and the field's name, never its value, is reported as a note. ``read_result`` collects the notes
of one answer so that the caller (a task) can log them where its user looks.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import types
import typing
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticUndefined

__all__ = ["ApiResponse", "IterableModel", "RequestModel", "read_result", "response_twin"]

logger = logging.getLogger("prefect_iterable.api")

# The notes of the answer being read; None outside ``read_result`` (notes then go to logging).
_notes: ContextVar[list[str] | None] = ContextVar("prefect_iterable_response_notes", default=None)


def _note(text: str) -> None:
    notes = _notes.get()
    if notes is None:
        logger.warning("response kept as received: %s", text)
    else:
        notes.append(text)


def _kind(value: Any) -> str:
    """A value's JSON kind, for notes: what arrived, never the value itself (it may be PII)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@contextlib.contextmanager
def _collecting() -> Iterator[list[str]]:
    notes: list[str] = []
    token = _notes.set(notes)
    try:
        yield notes
    finally:
        _notes.reset(token)


@functools.cache
def _cached_adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    try:
        return _cached_adapter(annotation)
    except TypeError:  # an unhashable annotation (a constraint holding a dict)
        return TypeAdapter(annotation)


def read_result(result_type: Any, answer: Any) -> tuple[Any, list[str]]:
    """``answer`` read into ``result_type``, tolerantly, and the notes on what did not fit.

    Never raises ``ValidationError``: what cannot be read into the type at all is returned as
    received, with a note.
    """
    with _collecting() as notes:
        try:
            value = _adapter(result_type).validate_python(answer)
        except ValidationError as exc:
            _note(
                f"the answer ({_kind(answer)}) does not fit {_type_name(result_type)}: {_first(exc)}"
            )
            value = answer
    # A nested object that did not fit is read again when its parent falls back: say it once.
    return value, list(dict.fromkeys(notes))


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


class IterableModel(BaseModel):
    """A response schema: snake_case in Python, camelCase on the wire, tolerant of its input.

    Unknown fields are kept (``model_extra``, and attributes under their wire name or its
    snake_case); a field whose value does not fit its annotation is kept as received, and a
    missing required field reads as ``None``, each with a note naming the field. Declare as
    required only the identifiers the library itself needs; everything else Iterable may leave
    out.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=False
    )

    # Hidden from type checkers: a class with __getattr__ satisfies every protocol (Awaitable
    # included), and Prefect's Task.__call__ would then be read as returning a coroutine.
    if not typing.TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)  # type: ignore[misc]
            except AttributeError:
                # An unknown field arrives camelCase; let Python code read it snake_case too.
                extra = object.__getattribute__(self, "__pydantic_extra__")
                if extra and to_camel(name) in extra:
                    return extra[to_camel(name)]
                raise

    @model_validator(mode="wrap")
    @classmethod
    def _tolerate(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError:
            salvaged = cls._salvage(data)
            if salvaged is None:
                raise  # not an object at all: the enclosing field (or read_result) keeps it
            return salvaged

    @classmethod
    def _salvage(cls, data: Any) -> Any:
        """Read ``data`` field by field, keeping what does not fit; None if it is no object."""
        try:
            for decorator in cls.__pydantic_decorators__.model_validators.values():
                if decorator.info.mode == "before":
                    data = decorator.func(data)
        except (ValueError, TypeError, AssertionError):
            return None
        if isinstance(data, BaseModel):
            data = data.model_dump(by_alias=True)
        if not isinstance(data, dict):
            return None
        by_key: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            by_key[name] = name
            if field.alias:
                by_key[field.alias] = name
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            known = by_key.get(key) if isinstance(key, str) else None
            if known is None:
                extra[str(key)] = value
            elif known not in values:
                values[known] = cls._field_value(known, value)
        received = set(values)
        for name, field in cls.model_fields.items():
            if name in values:
                continue
            if field.is_required():
                _note(f"{cls.__name__}.{name} is missing; it reads as None")
                values[name] = None
            elif field.default_factory is not None:
                values[name] = field.default_factory()  # type: ignore[call-arg]
            elif field.default is not PydanticUndefined:
                values[name] = field.default
        model = cls.model_construct(_fields_set=received, **values)
        object.__setattr__(model, "__pydantic_extra__", extra)
        return model

    @classmethod
    def _field_value(cls, name: str, value: Any) -> Any:
        field = cls.model_fields[name]
        # Annotated[(type, *metadata)]: one tuple, so that it also parses on Python 3.10.
        annotated = (field.annotation, *field.metadata)
        annotation = Annotated[annotated] if field.metadata else field.annotation
        try:
            return _adapter(annotation).validate_python(value)
        except ValidationError as exc:
            item = _list_item(field.annotation)
            if item is not None and isinstance(value, list):
                # One odd item does not cost the others their types.
                kept = []
                for index, element in enumerate(value):
                    try:
                        kept.append(_adapter(item).validate_python(element))
                    except ValidationError:
                        _note(f"{cls.__name__}.{name}[{index}] kept as received ({_kind(element)})")
                        kept.append(element)
                return kept
            _note(f"{cls.__name__}.{name} kept as received ({_kind(value)}): {_first(exc)}")
            return value


def _list_item(annotation: Any) -> Any:
    """The item type of ``list[X]`` (or ``list[X] | None``), else None."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is list and typing.get_args(annotation):
        return typing.get_args(annotation)[0]
    return None


class RequestModel(BaseModel):
    """A nested request object: strict about unknown fields, so a typo fails before sending."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        ser_json_inf_nan="constants",  # NaN reaches the client's check instead of becoming null
    )


_twins: dict[type[RequestModel], type[IterableModel]] = {}


def response_twin(model: type[RequestModel]) -> type[IterableModel]:
    """The response-side reading of a request object: same fields, none required, no limits.

    Answers carry the objects a request sends (push buttons, link parameters, display settings,
    embedded elements), but a request's rules (unknown keys refused, lengths, patterns) must not
    make an answer fail; the twin keeps the fields' names, types and descriptions only.
    """
    twin = _twins.get(model)
    if twin is None:
        fields: dict[str, Any] = {
            name: (_loosened(field.annotation) | None, Field(None, description=field.description))
            for name, field in model.model_fields.items()
        }
        twin = _twins[model] = create_model(
            model.__name__, __base__=IterableModel, __module__=model.__module__, **fields
        )
        twin.__doc__ = model.__doc__
    return twin


def _loosened(annotation: Any) -> Any:
    """``annotation`` without constraints, with request objects replaced by their twins."""
    if isinstance(annotation, type) and issubclass(annotation, RequestModel):
        return response_twin(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _loosened(args[0])
    if origin is Literal or not args:
        return annotation
    loosened = tuple(_loosened(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, loosened)
    return origin[loosened if len(loosened) > 1 else loosened[0]]


class ApiResponse(IterableModel):
    """Iterable's standard envelope: ``{msg, code, params}``."""

    msg: str = ""
    code: str = "Success"
    params: dict[str, Any] | None = None
