"""The selector grammar without a server: what parses into which requirements, and the parser's texts."""

from __future__ import annotations

import pytest

from simulator.selector_parser import Requirement, SelectorSyntaxError, parse_selector


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("a=b", [Requirement("a", "=", ("b",))]),
        ("a==b", [Requirement("a", "==", ("b",))]),
        ("a!=b", [Requirement("a", "!=", ("b",))]),
        ("a in (x, y ,z)", [Requirement("a", "in", ("x", "y", "z"))]),
        ("a notin (x)", [Requirement("a", "notin", ("x",))]),
        ("a", [Requirement("a", "exists", ())]),
        ("!a", [Requirement("a", "!", ())]),
        ("a contains b", [Requirement("a", "contains", ("b",))]),
        ("a notcontains b", [Requirement("a", "notcontains", ("b",))]),
        (
            "a>1,a>=2,a<3,a<=4",
            [
                Requirement("a", "gt", ("1",)),
                Requirement("a", "gte", ("2",)),
                Requirement("a", "lt", ("3",)),
                Requirement("a", "lte", ("4",)),
            ],
        ),
        ("t >= 2024-01-01T00:00:00Z", [Requirement("t", "gte", ("2024-01-01T00:00:00Z",))]),
        ("metadata.owner=Fleet/pos:a=b!c", [Requirement("metadata.owner", "=", ("Fleet/pos:a=b!c",))]),
        (r"a=x\,y", [Requirement("a", "=", ("x,y",))]),
        ("a=", [Requirement("a", "=", ("",))]),
        ("", []),
    ],
)
def test_parser_accepts_the_grammar(text: str, requirements: list[Requirement]) -> None:
    assert parse_selector(text) == requirements


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("=foo", "found '=', expected: !, identifier, or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("a b", "found 'b', expected: in, notin, =, ==, !=, gt, gte, lt, lte, contains, notcontains"),
        ("a in x", "found 'x', expected: '('"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ],
)
def test_parser_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorSyntaxError) as caught:
        parse_selector(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(a,b) in ((x))", "length mismatch: key (a,b) has 2 elements but value x has 1 elements"),
        ("(a,b) in ((x,y,z))", "length mismatch: key (a,b) has 2 elements but value (x,y,z) has 3 elements"),
        ("(a,b)=x", "length mismatch: key (a,b) has 2 elements but value x has 1 elements"),
        ("(a,) in ((x,y))", "empty key found in keyset"),
        ("(a,b) in ()", "unexpected closing parenthesis"),
        ("a=(x,y)", "length mismatch: key a has 1 elements but value (x,y) has 2 elements"),
    ],
)
def test_tuple_form_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorSyntaxError) as caught:
        parse_selector(text, labels=True)
    assert str(caught.value) == message


def test_a_parenthesised_single_value_is_that_value() -> None:
    assert parse_selector("a=(x)") == parse_selector("a=x")
