"""Field and label selectors with Flight Control's grammar, operators per type and error texts.

The grammar is the k8s one as forked by Flight Control (``pkg/k8s/selector``): requirements joined by
commas, ``key``, ``!key``, ``key op value`` and ``key in (a,b)``, with the extra operators
``contains``/``notcontains``/``>=``/``<=``. Parsing gives :class:`Requirement` objects; compiling them
against a kind's :class:`FieldSpec` table gives a predicate over a record. Every failure is an
``ApiFailure(400)`` carrying the real server's message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from simulator.errors import ApiFailure

__all__ = [
    "FieldSpec",
    "Predicate",
    "Requirement",
    "SelectorSyntaxError",
    "compile_field_selector",
    "compile_label_selector",
    "parse_rfc3339",
    "parse_selector",
]

FieldType = Literal["string", "jsonb", "timestamp", "bool"]
Predicate = Callable[[Any], bool]

# Operator names as k8s selection.Operator spells them (they appear in error messages).
EQ, DEQ, NEQ, IN, NOTIN = "=", "==", "!=", "in", "notin"
EXISTS, NOT_EXISTS = "exists", "!"
GT, GTE, LT, LTE = "gt", "gte", "lt", "lte"
CONTAINS, NOTCONTAINS = "contains", "notcontains"

_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, gte, lt, lte, contains, notcontains"
_ALLOWED: dict[str, frozenset[str]] = {
    "string": frozenset({EQ, DEQ, NEQ, IN, NOTIN, CONTAINS, NOTCONTAINS, EXISTS, NOT_EXISTS}),
    "jsonb": frozenset({EQ, DEQ, NEQ, IN, NOTIN, EXISTS, NOT_EXISTS}),
    "timestamp": frozenset({EQ, DEQ, NEQ, IN, NOTIN, GT, GTE, LT, LTE, EXISTS, NOT_EXISTS}),
    "bool": frozenset({EQ, DEQ, NEQ, IN, NOTIN, EXISTS, NOT_EXISTS}),
}
_LABEL_OPERATORS = frozenset({EQ, DEQ, NEQ, IN, NOTIN, EXISTS, NOT_EXISTS})

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_DNS1123_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_LABEL_VALUE_FMT = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
# strconv.ParseInt(v, 10, 64), or a UUID (upstream's uuid.Parse): "1.5" is not a number here.
_INTEGER_RE = re.compile(r"^[-+]?\d{1,19}$")
_UUID_RE = re.compile(
    r"^(urn:uuid:)?\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$"
)


class SelectorSyntaxError(Exception):
    """The selector text does not parse; the message is the k8s parser's."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...]
    # The tuple form ``(k1,k2) in ((a,b),(c,d))``: the keys, and one value tuple per element.
    keys: tuple[str, ...] = ()
    tuples: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class FieldSpec:
    """A selectable field: its type and how to read it from a record (None when NULL)."""

    type: FieldType
    getter: Callable[[Any], Any]
    # Several getters ORed together (metadata.nameOrAlias); when set, ``getter`` is ignored.
    any_of: tuple[Callable[[Any], Any], ...] = ()


# --------------------------------------------------------------------------------------------- lexer

_TOKEN_END, _TOKEN_ID, _TOKEN_OP, _TOKEN_OPEN, _TOKEN_CLOSE, _TOKEN_COMMA, _TOKEN_NOT = range(7)
_SPECIAL = "=!<>(),"
_KEYWORDS = {"in": IN, "notin": NOTIN, "contains": CONTAINS, "notcontains": NOTCONTAINS}


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def next(self, *, value: bool) -> tuple[int, str]:
        """Next token; in value mode an identifier runs until whitespace, parentheses or comma."""
        self._skip_space()
        if self.pos >= len(self.text):
            return _TOKEN_END, ""
        ch = self.text[self.pos]
        if ch == "(":
            self.pos += 1
            return _TOKEN_OPEN, "("
        if ch == ")":
            self.pos += 1
            return _TOKEN_CLOSE, ")"
        if ch == ",":
            self.pos += 1
            return _TOKEN_COMMA, ","
        if not value and ch in "=!<>":
            two = self.text[self.pos : self.pos + 2]
            if two in ("==", "!=", ">=", "<="):
                self.pos += 2
                return _TOKEN_OP, two
            self.pos += 1
            if ch == "!":
                return _TOKEN_NOT, "!"
            return _TOKEN_OP, ch
        return _TOKEN_ID, self._identifier(value=value)

    def _identifier(self, *, value: bool) -> str:
        out: list[str] = []
        stop = "()," if value else _SPECIAL
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch.isspace() or ch in stop:
                break
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        return "".join(out)

    def peek(self, *, value: bool) -> tuple[int, str]:
        saved = self.pos
        token = self.next(value=value)
        self.pos = saved
        return token


# -------------------------------------------------------------------------------------------- parser


def _validate_key(key: str) -> None:
    errors: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        elif len(prefix) > 253:
            errors.append("prefix part must be no more than 253 characters")
        elif not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
            errors.append(
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                f"'example.com', regex used for validation is '{_DNS1123_SUBDOMAIN_FMT}')"
            )
    else:
        raise SelectorSyntaxError(
            f'key: Invalid value: "{key}": a qualified name must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
            f"'my.name',  or '123-abc', regex used for validation is '{_QUALIFIED_NAME_FMT}') with an "
            "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        )
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME_RE.fullmatch(name):
        errors.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            f"validation is '{_QUALIFIED_NAME_FMT}')"
        )
    if errors:
        raise SelectorSyntaxError(f'key: Invalid value: "{key}": ' + "; ".join(errors))


def _validate_label_value(index: int, value: str) -> None:
    if len(value) > 63:
        raise SelectorSyntaxError(
            f'values[{index}]: Invalid value: "{value}": must be no more than 63 characters'
        )
    if not _LABEL_VALUE_RE.fullmatch(value):
        raise SelectorSyntaxError(
            f'values[{index}]: Invalid value: "{value}": a valid label value must be an empty string or '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
            f"validation is '{_LABEL_VALUE_FMT}')"
        )


class _Parser:
    def __init__(self, text: str, *, labels: bool) -> None:
        self.lexer = _Lexer(text)
        self.labels = labels

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lexer.peek(value=False)
            if tok in (_TOKEN_ID, _TOKEN_NOT, _TOKEN_OPEN):
                requirements.append(self._requirement())
                tok, lit = self.lexer.next(value=False)
                if tok == _TOKEN_END:
                    return requirements
                if tok != _TOKEN_COMMA:
                    raise SelectorSyntaxError(f"found '{lit}', expected: ',' or 'end of string'")
                tok2, lit2 = self.lexer.peek(value=False)
                if tok2 not in (_TOKEN_ID, _TOKEN_NOT, _TOKEN_OPEN):
                    raise SelectorSyntaxError(f"found '{lit2}', expected: identifier after ','")
            elif tok == _TOKEN_END:
                return requirements
            else:
                raise SelectorSyntaxError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def _requirement(self) -> Requirement:
        tok, lit = self.lexer.peek(value=False)
        if tok == _TOKEN_OPEN:
            return self._tuple_requirement()
        tok, lit = self.lexer.next(value=False)
        negated = False
        if tok == _TOKEN_NOT:
            negated = True
            tok, lit = self.lexer.next(value=False)
        if tok != _TOKEN_ID:
            raise SelectorSyntaxError(f"found '{lit}', expected: identifier")
        key = lit
        _validate_key(key)
        after, _ = self.lexer.peek(value=False)
        if negated or after in (_TOKEN_END, _TOKEN_COMMA):
            if negated and after not in (_TOKEN_END, _TOKEN_COMMA):
                _, bad = self.lexer.next(value=False)
                raise SelectorSyntaxError(f"found '{bad}', expected: ',' or 'end of string'")
            return Requirement(key, NOT_EXISTS if negated else EXISTS, ())
        operator = self._operator()
        if operator in (IN, NOTIN):
            values = self._value_list()
        elif self.lexer.peek(value=True)[0] == _TOKEN_OPEN:  # key=(a) is key=a; (a,b) has two elements
            values = self._raw_list()
            if len(values) != 1:
                raise SelectorSyntaxError(
                    f"length mismatch: key {key} has 1 elements but value ({','.join(values)}) has "
                    f"{len(values)} elements"
                )
        else:
            values = (self._exact_value(),)
        self._check_values(operator, values)
        return Requirement(key, operator, values)

    def _tuple_requirement(self) -> Requirement:
        """``(k1,k2) in ((a,b),(c,d))`` (or notin): every key must hold the value at its position."""
        keys = self._raw_list()
        if any(not k.strip() for k in keys):
            raise SelectorSyntaxError("empty key found in keyset")
        name = "(" + ",".join(keys) + ")"
        if not self.labels:
            _validate_key(name)  # field selectors name one field: a keyset is no field name
        for key in keys:
            _validate_key(key)
        operator = self._operator()
        if operator not in (IN, NOTIN):
            raise SelectorSyntaxError(
                f"length mismatch: key {name} has {len(keys)} elements but value "
                f"{self._exact_value()} has 1 elements"
            )
        tok, lit = self.lexer.next(value=True)
        if tok != _TOKEN_OPEN:
            raise SelectorSyntaxError(f"found '{lit}', expected: '('")
        tuples: list[tuple[str, ...]] = []
        while True:
            tok, lit = self.lexer.peek(value=True)
            if tok == _TOKEN_CLOSE:
                self.lexer.next(value=True)
                raise SelectorSyntaxError("unexpected closing parenthesis")
            if tok != _TOKEN_OPEN:
                raise SelectorSyntaxError(f"found '{lit}', expected '(' or ')'")
            values = self._raw_list()
            if len(values) != len(keys):
                shown = values[0] if len(values) == 1 else "(" + ",".join(values) + ")"
                raise SelectorSyntaxError(
                    f"length mismatch: key {name} has {len(keys)} elements but value {shown} has "
                    f"{len(values)} elements"
                )
            if self.labels:
                for index, value in enumerate(values):
                    _validate_label_value(index, value)
            tuples.append(values)
            tok, lit = self.lexer.next(value=True)
            if tok == _TOKEN_CLOSE:
                return Requirement(name, operator, (), keys, tuple(dict.fromkeys(tuples)))
            if tok != _TOKEN_COMMA:
                raise SelectorSyntaxError(f"found '{lit}', expected ',' or ')'")

    def _raw_list(self) -> tuple[str, ...]:
        """``(a,b,c)`` in order, empty elements kept (a keyset or one value tuple)."""
        tok, lit = self.lexer.next(value=True)
        if tok != _TOKEN_OPEN:
            raise SelectorSyntaxError(f"found '{lit}' expected: '('")
        return self._items()

    def _items(self) -> tuple[str, ...]:
        """The elements up to the closing parenthesis (``(,`` ``,,`` ``,)`` and ``()`` give "")."""
        items: list[str] = []
        expect_value = True
        while True:
            tok, lit = self.lexer.next(value=True)
            if tok == _TOKEN_ID:
                if not expect_value:
                    raise SelectorSyntaxError(f"found '{lit}', expected: ',' or ')'")
                items.append(lit)
                expect_value = False
            elif tok == _TOKEN_COMMA:
                if expect_value:
                    items.append("")
                expect_value = True
            elif tok == _TOKEN_CLOSE:
                if expect_value:
                    items.append("")
                return tuple(items)
            else:
                raise SelectorSyntaxError(f"found '{lit}', expected: ',', ')' or identifier")

    def _operator(self) -> str:
        tok, lit = self.lexer.next(value=False)
        if tok == _TOKEN_OP:
            return {"=": EQ, "==": DEQ, "!=": NEQ, ">": GT, ">=": GTE, "<": LT, "<=": LTE}[lit]
        if tok == _TOKEN_ID and lit in _KEYWORDS:
            return _KEYWORDS[lit]
        raise SelectorSyntaxError(f"found '{lit}', expected: {_BINARY_OPERATORS}")

    def _exact_value(self) -> str:
        tok, lit = self.lexer.peek(value=True)
        if tok in (_TOKEN_END, _TOKEN_COMMA):
            return ""
        tok, lit = self.lexer.next(value=True)
        if tok == _TOKEN_ID:
            return lit
        raise SelectorSyntaxError(f"found '{lit}', expected: identifier")

    def _value_list(self) -> tuple[str, ...]:
        tok, lit = self.lexer.next(value=True)
        if tok != _TOKEN_OPEN:
            raise SelectorSyntaxError(f"found '{lit}', expected: '('")
        return tuple(sorted(set(self._items())))  # k8s keeps a set: duplicates collapse, sorted

    def _check_values(self, operator: str, values: tuple[str, ...]) -> None:
        if operator in (GT, GTE, LT, LTE):
            value = values[0]
            if not (
                _INTEGER_RE.fullmatch(value) or parse_rfc3339(value) is not None or _UUID_RE.fullmatch(value)
            ):
                raise SelectorSyntaxError(
                    f"values[0]: Invalid value: \"{value}\": for 'Gt', 'Lt', 'Gte', and 'Lte' "
                    "operators, the value must be a number or a valid time in RFC3339 format"
                )
        if self.labels:
            for index, value in enumerate(values):
                _validate_label_value(index, value)


def parse_selector(text: str, *, labels: bool = False) -> list[Requirement]:
    """Parse a selector string; raises SelectorSyntaxError with the parser's message."""
    return _Parser(text, labels=labels).parse()


# -------------------------------------------------------------------------------- values and compile

_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(value: str) -> int | None:
    """Microseconds since the epoch for an RFC 3339 time, or None when it is not one."""
    match = _RFC3339_RE.fullmatch(value)
    if not match:
        return None
    fraction = match.group(7) or ""
    zone = match.group(8)
    base = value[: match.start(7)] if fraction else value[: match.start(8)]
    try:
        parsed = datetime.fromisoformat(base + ("+00:00" if zone in ("Z", "z") else zone))
    except ValueError:
        return None
    micros = int(parsed.timestamp()) * 1_000_000
    if fraction:
        micros += int((fraction[1:] + "000000")[:6])
    return micros


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
