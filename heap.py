"""Garbage-collector settings for a long-running server, applied once it is built.

A list call parses an API page of a few hundred KB into tens of thousands of new objects. With the
default settings that starts many young collections and, every few calls, a full one that walks every
object the process holds: the framework, the generated client's models and the tool schemas, far more
than the page. Measured on a default ``query_devices()`` with production-sized devices, that was a third
of the call's CPU. What exists once the server is built lives until exit, so ``settle`` moves it out of
the collector's sight (``gc.freeze``) and lets the young generation grow larger, so a page is parsed and
dropped with few collections. Reference cycles are still collected.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterable

__all__ = ["HTTP_PRELOAD", "settle"]

# Imported by the first API call anyway; an HTTP server imports it before it settles, so those objects
# are frozen too (stdio imports it lazily: its first tools/list must not wait for it).
HTTP_PRELOAD = ("flightctl.api",)

_YOUNG_THRESHOLD = 10_000  # default 700: a 400 KB page would start ~150 young collections


def settle(preload: Iterable[str] = (), *, collect: bool = True) -> None:
    """Import ``preload``, collect once, and freeze everything alive now; call it just before serving.

    ``collect=False`` skips the full collection (~40 ms): for stdio, where it would delay the first
    answers of a process that serves one user, the little garbage of start-up is frozen along."""
    for module in preload:
        importlib.import_module(module)
    if collect:
        gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_THRESHOLD, older, oldest)
