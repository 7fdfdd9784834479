"""Read an API list page keeping only what the answer will show: decoding is most of a list call's CPU.

A production-sized device is ~4 KB of JSON, of which the default view shows a tenth. Parsing whole pages
builds tens of thousands of objects that are projected away at once. ``page_decoder(paths)`` builds, once
per view, a msgspec decoder typed with just the view's paths: keys outside them are skipped while
parsing, never built. Its types admit every JSON shape (objects, lists, scalars at any node), so a valid
body never fails for its shape; ``views.project`` then gives exactly what it gives over the whole page.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any, TypedDict, Union

import msgspec

from views import PathTree, compiled_paths

__all__ = ["page_decoder"]

_SCALARS: tuple[Any, ...] = (str, int, float, bool, None)


@functools.lru_cache(maxsize=256)
def page_decoder(paths: tuple[str, ...]) -> Callable[[bytes], Any] | None:
    """``decode(body)``: a list body (``items``, ``metadata``, ``summary``) with items cut to ``paths``.

    It raises ValueError for what it cannot read (malformed JSON, NaN, numbers out of range, a body that is
    not an object): the caller parses those the general way, which reads them or says what is wrong.
    None when a path is not ASCII: msgspec skips a non-ASCII TypedDict key as unknown unless that str's
    UTF-8 form happens to be cached (msgspec/msgspec#1126), so such a view is read in full. (``fields``
    paths are ASCII today, params.PATH_PATTERN; this keeps a view that is not from being cut wrongly.)
    Decoders are shared by the worker threads: msgspec's are thread-safe since 0.16."""
    if not all(path.isascii() for path in paths):
        return None
    item = _branch(compiled_paths(paths), "Item")
    page = _typed_dict("Page", {"items": _any_of(_list_of(item), *_SCALARS), "metadata": Any, "summary": Any})
    return msgspec.json.Decoder(page).decode


def _branch(tree: PathTree, name: str) -> Any:
    """Any JSON value at a node with paths below it: an object keeps only those keys (a list, per element,
    as ``views.project`` does); a scalar is read as it is and left for the projection to drop."""
    fields = {key: Any if below is None else _branch(below, f"{name}_{key}") for key, below in tree.items()}
    node = _typed_dict(name, fields)
    return _any_of(node, _list_of(_any_of(node, _list_of(Any), *_SCALARS)), *_SCALARS)


# Types known only at run time, built the way the typing module builds them (type checkers read a call of
# TypedDict, or list[...] of a variable, as a mistake in a static annotation).
_TYPED_DICT: Any = TypedDict


def _typed_dict(name: str, fields: dict[str, Any]) -> Any:
    return _TYPED_DICT(name, fields, total=False)


def _list_of(element: Any) -> Any:
    return types.GenericAlias(list, (element,))


def _any_of(*members: Any) -> Any:
    return Union.__getitem__(members)
