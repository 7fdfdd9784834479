"""Argument types every tool shares: object names, selectors, dotted paths and the strict params base."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from auth import TokenSource
    from services import Services

__all__ = ["NAME_PATTERN", "PATH_PATTERN", "DottedPath", "Handler", "Name", "Params", "Selector"]

#: What runs an operation: the shared services, the caller's token source and the validated params.
Handler = Callable[["Services", "TokenSource | None", Any], Awaitable[dict[str, Any]]]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$"
PATH_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_/-]+)*$"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Selector = Annotated[str, Field(min_length=1, max_length=2048)]
DottedPath = Annotated[str, Field(pattern=PATH_PATTERN, max_length=200)]


class Params(BaseModel):
    """Unknown arguments are errors (a typo is never silently ignored); params never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Every operation's: an id or display name overriding the configured organization for one call
    # (organizations.py). Explained once in the server instructions to keep tools/list small.
    organization: str | None = None
