"""How many objects to ask the API for, so one page holds about what one answer can show.

An answer is cut at the response budget, so reading more objects than fit is CPU spent parsing what is
never shown (and read again on the next call). The size an object takes in an answer depends on the kind
and the view, so ``ItemSizes`` remembers the average of earlier answers of this process per tool and
view; a cursor carries the size measured so far, and the first answer of a kind starts from a guess.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from cursors import Position
from resource_queries import MAX_PAGE_SIZE

__all__ = ["GUESSED_ITEM_BYTES", "ItemSizes", "next_page_size"]

GUESSED_ITEM_BYTES = 400  # a compact device, before anything was measured (x10 for whole objects)
_FIT_PERCENT = 90  # slack: items vary in size, and a page that ends before the budget is never read twice


def next_page_size(position: Position, wanted: int, room: int, item_bytes: int) -> int:
    """Ask the API for about what will fit, not for ``wanted`` items the budget would cut anyway.

    A page resumed from a cursor is read again with the size it was first read with, so its items keep
    their offsets and the answer moves on to the next continue token instead of growing this page.
    """
    if position.offset and position.page_size > position.offset:
        return position.page_size
    fit = max(1, (room * _FIT_PERCENT // 100) // max(item_bytes, 1))
    return max(1, min(position.offset + min(wanted, fit), MAX_PAGE_SIZE))


class ItemSizes:
    """Average bytes of one object in an answer, per tool and view, learned from this process's answers.

    Bounded (callers choose ``fields``, so views are unbounded): the least recently used view is
    forgotten first. Runs on the event loop only, so it needs no lock.
    """

    def __init__(self, max_views: int = 256) -> None:
        self._bytes: OrderedDict[Hashable, int] = OrderedDict()
        self._max = max_views

    def guess(self, view: Hashable, *, whole: bool) -> int:
        """The learned size, or a guess for a view never answered (whole objects are ~10x compact ones)."""
        learned = self._bytes.get(view)
        if learned is None:
            return GUESSED_ITEM_BYTES * (10 if whole else 1)
        self._bytes.move_to_end(view)
        return learned

    def learn(self, view: Hashable, item_bytes: int) -> None:
        """Remember the average size measured in one answer (the newest answer counts as much as the past)."""
        if item_bytes <= 0:
            return
        previous = self._bytes.get(view)
        self._bytes[view] = item_bytes if previous is None else (previous + item_bytes) // 2
        self._bytes.move_to_end(view)
        while len(self._bytes) > self._max:
            self._bytes.popitem(last=False)
