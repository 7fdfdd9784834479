"""Field and label selectors compiled into predicates, with Flight Control's operators per type and
error texts.

selector_parser.py parses the text into :class:`Requirement` objects; compiling them against a kind's
:class:`FieldSpec` table gives a predicate over a record. Every failure is an ``ApiFailure(400)``
carrying the real server's message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from simulator.errors import ApiFailure
from simulator.selector_parser import (
    CONTAINS,
    DEQ,
    EQ,
    EXISTS,
    GT,
    GTE,
    IN,
    LT,
    LTE,
    NEQ,
    NOT_EXISTS,
    NOTCONTAINS,
    NOTIN,
    Requirement,
    SelectorSyntaxError,
    parse_rfc3339,
    parse_selector,
)

__all__ = [
    "FieldSpec",
    "Predicate",
    "compile_field_selector",
    "compile_label_selector",
]

FieldType = Literal["string", "jsonb", "timestamp", "bool"]
Predicate = Callable[[Any], bool]

_ALLOWED: dict[str, frozenset[str]] = {
    "string": frozenset({EQ, DEQ, NEQ, IN, NOTIN, CONTAINS, NOTCONTAINS, EXISTS, NOT_EXISTS}),
    "jsonb": frozenset({EQ, DEQ, NEQ, IN, NOTIN, EXISTS, NOT_EXISTS}),
    "timestamp": frozenset({EQ, DEQ, NEQ, IN, NOTIN, GT, GTE, LT, LTE, EXISTS, NOT_EXISTS}),
    "bool": frozenset({EQ, DEQ, NEQ, IN, NOTIN, EXISTS, NOT_EXISTS}),
}
_LABEL_OPERATORS = frozenset({EQ, DEQ, NEQ, IN, NOTIN, EXISTS, NOT_EXISTS})


@dataclass(frozen=True)
class FieldSpec:
    """A selectable field: its type and how to read it from a record (None when NULL)."""

    type: FieldType
    getter: Callable[[Any], Any]
    # Several getters ORed together (metadata.nameOrAlias); when set, ``getter`` is ignored.
    any_of: tuple[Callable[[Any], Any], ...] = ()


# ------------------------------------------------------------------------------- values and compile


def _parse_bool(key: str, value: str) -> bool:
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ApiFailure(
        400,
        f'failed to parse field selector: failed to parse value for selector "{key}": failed to parse '
        f'boolean value: strconv.ParseBool: parsing "{value}": invalid syntax',
    )


def _parse_time(key: str, value: str) -> int:
    seconds = parse_rfc3339(value)
    if seconds is None:
        raise ApiFailure(
            400,
            f'failed to parse field selector: failed to parse value for selector "{key}": failed to '
            f'parse timestamp value: parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot '
            f'parse "{value}" as "2006"',
        )
    return seconds


def _compare(operator: str, values: Sequence[Any]) -> Callable[[Any], bool]:
    """A test of one (non-NULL or NULL) field value against parsed requirement values."""
    first = values[0] if values else None
    if operator in (EQ, DEQ):
        return lambda v: v is not None and v == first
    if operator == NEQ:
        return lambda v: v is None or v != first
    if operator == IN:
        wanted = set(values)
        return lambda v: v is not None and v in wanted
    if operator == NOTIN:
        unwanted = set(values)
        return lambda v: v is None or v not in unwanted
    if operator == EXISTS:
        return lambda v: v is not None
    if operator == NOT_EXISTS:
        return lambda v: v is None
    if operator == CONTAINS:
        return lambda v: v is not None and str(first) in v
    if operator == NOTCONTAINS:
        return lambda v: v is None or str(first) not in v
    if operator == GT:
        return lambda v: v is not None and v > first
    if operator == GTE:
        return lambda v: v is not None and v >= first
    if operator == LT:
        return lambda v: v is not None and v < first
    if operator == LTE:
        return lambda v: v is not None and v <= first
    raise AssertionError(operator)


def _field_predicate(requirement: Requirement, spec: FieldSpec) -> Predicate:
    key, operator = requirement.key, requirement.operator
    if operator not in _ALLOWED[spec.type]:
        if spec.type == "jsonb" and operator in (CONTAINS, NOTCONTAINS):
            raise ApiFailure(
                400,
                f'failed to parse field selector: failed to resolve operation for selector "{key}": the '
                f'operator "{operator}" is not supported for partial string matching when the field is '
                "of type JSONB with string casting",
            )
        type_name = "string" if spec.type == "jsonb" else spec.type
        raise ApiFailure(
            400,
            f'failed to parse field selector: failed to resolve operation for selector "{key}": '
            f'operator "{operator}" is unsupported for type {type_name}',
        )
    values: list[Any]
    if spec.type == "bool":
        values = [_parse_bool(key, v) for v in requirement.values]
    elif spec.type == "timestamp":
        values = [_parse_time(key, v) for v in requirement.values]
    else:
        values = list(requirement.values)
    test = _compare(operator, values)
    if spec.any_of:
        getters = spec.any_of
        return lambda record: any(test(get(record)) for get in getters)
    getter = spec.getter
    return lambda record: test(getter(record))


def compile_field_selector(
    text: str | None,
    fields: Mapping[str, FieldSpec],
    *,
    private: frozenset[str] = frozenset({"metadata.labels", "metadata.annotations"}),
) -> Predicate | None:
    """A predicate for a fieldSelector over one kind's fields, or None when there is nothing to test."""
    if not text:
        return None
    try:
        requirements = parse_selector(text)
    except SelectorSyntaxError as exc:
        raise ApiFailure(
            400, f"failed to parse field selector: invalid field selector syntax: {exc}"
        ) from exc
    predicates: list[Predicate] = []
    for requirement in requirements:
        if requirement.key in private:
            raise ApiFailure(
                400,
                f'failed to parse field selector: failed to parse selector "{requirement.key}": field is '
                "marked as private and cannot be selected",
            )
        spec = fields.get(requirement.key)
        if spec is None:
            supported = " ".join(sorted(fields))
            raise ApiFailure(
                400,
                f'unknown or unsupported selector: unable to resolve selector name "{requirement.key}". '
                f"Supported selectors are: [{supported}]",
            )
        predicates.append(_field_predicate(requirement, spec))
    return _all(predicates)


def compile_label_selector(
    text: str | None, labels_of: Callable[[Any], Mapping[str, str] | None]
) -> Predicate | None:
    """A predicate for a labelSelector, or None when there is nothing to test."""
    if not text:
        return None
    try:
        requirements = parse_selector(text, labels=True)
    except SelectorSyntaxError as exc:
        raise ApiFailure(
            400, f"failed to parse label selector: invalid label selector syntax: {exc}"
        ) from exc
    predicates: list[Predicate] = []
    for requirement in requirements:
        if requirement.operator not in _LABEL_OPERATORS:
            raise ApiFailure(
                400,
                f'failed to parse label selector: failed to resolve operation for key "{requirement.key}": '
                f'unsupported operator "{requirement.operator}" for label selector',
            )
        if requirement.keys:
            predicates.append(_tuple_predicate(requirement, labels_of))
            continue
        test = _compare(requirement.operator, list(requirement.values))
        key = requirement.key

        def predicate(record: Any, key: str = key, test: Callable[[Any], bool] = test) -> bool:
            labels = labels_of(record)
            return test(labels.get(key) if labels else None)

        predicates.append(predicate)
    return _all(predicates)


def _tuple_predicate(
    requirement: Requirement, labels_of: Callable[[Any], Mapping[str, str] | None]
) -> Predicate:
    """in: every key present and the tuple of their values listed; notin: any key missing, or not listed."""
    wanted = set(requirement.tuples)
    keys = requirement.keys
    inside = requirement.operator == IN

    def predicate(record: Any) -> bool:
        labels = labels_of(record) or {}
        if any(k not in labels for k in keys):
            return not inside
        return (tuple(labels[k] for k in keys) in wanted) == inside

    return predicate


def _all(predicates: list[Predicate]) -> Predicate | None:
    if not predicates:
        return None
    if len(predicates) == 1:
        return predicates[0]
    return lambda record: all(p(record) for p in predicates)
