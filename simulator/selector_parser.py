"""The selector grammar: Flight Control's fork of the k8s selector parser, with its error texts.

The grammar is the k8s one as forked by Flight Control (``pkg/k8s/selector``): requirements joined by
commas, ``key``, ``!key``, ``key op value`` and ``key in (a,b)``, with the extra operators
``contains``/``notcontains``/``>=``/``<=``. Parsing gives :class:`Requirement` objects (selectors.py
compiles them against a kind's fields); a text that does not parse raises :class:`SelectorSyntaxError`
with the real parser's message. RFC 3339 times are read here too, because a comparison's value must be
one (or a number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "CONTAINS",
    "DEQ",
    "EQ",
    "EXISTS",
    "GT",
    "GTE",
    "IN",
    "LT",
    "LTE",
    "NEQ",
    "NOTCONTAINS",
    "NOTIN",
    "NOT_EXISTS",
    "Requirement",
    "SelectorSyntaxError",
    "parse_rfc3339",
    "parse_selector",
]

# Operator names as k8s selection.Operator spells them (they appear in error messages).
EQ, DEQ, NEQ, IN, NOTIN = "=", "==", "!=", "in", "notin"
EXISTS, NOT_EXISTS = "exists", "!"
GT, GTE, LT, LTE = "gt", "gte", "lt", "lte"
CONTAINS, NOTCONTAINS = "contains", "notcontains"

_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, gte, lt, lte, contains, notcontains"

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


# ----------------------------------------------------------------------------------------- times

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
