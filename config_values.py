"""Typed values of settings: the ``Secret`` wrapper, the parsers from text, ``Option`` and layered values.

Every parser turns raw text into a typed value or raises ``ValueError`` saying which values are valid;
``Values`` remembers which layer (default, client.yaml, environment, flag) each raw value came from, so
an error can name it. The table of options itself lives in config.py.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from errors import ConfigurationError

__all__ = [
    "LAYER_DEFAULT",
    "LAYER_ENV",
    "LAYER_FILE",
    "LAYER_FLAG",
    "LOG_LEVELS",
    "REALM_TOKEN_SUFFIX",
    "Option",
    "Secret",
    "Values",
    "choice_of",
    "default_audit_log_file",
    "default_log_file",
    "default_state_dir",
    "float_between",
    "home_dir",
    "int_between",
    "parse_api_url",
    "parse_bool",
    "parse_csv",
    "parse_existing_file",
    "parse_org_uuid",
    "parse_path",
    "parse_secret",
    "parse_text",
    "parse_token_url",
    "parse_url",
    "parse_url_path",
]

T = TypeVar("T")

REALM_TOKEN_SUFFIX = "/protocol/openid-connect/token"


class Secret:
    """A credential that never shows itself in a repr, an f-string or a log line; ``reveal()`` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value: call this only where the secret is sent, never where it is shown."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


# --------------------------------------------------------------------------------------------------
# Parsers: raw text -> typed value, or ValueError saying what is valid
# --------------------------------------------------------------------------------------------------


def parse_text(raw: str) -> str:
    return raw.strip()


def parse_secret(raw: str) -> Secret:
    return Secret(raw.strip())


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("valid values are true or false (also 1/0, yes/no, on/off)")


def parse_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("valid values are absolute http:// or https:// URLs")
    return value


def parse_api_url(raw: str) -> str:
    """The API base URL is the part before /api/v1; a pasted /api/v1 suffix is dropped."""
    value = parse_url(raw)
    return value[: -len("/api/v1")] if value.endswith("/api/v1") else value


def parse_token_url(raw: str) -> str:
    """A bare Keycloak realm URL (…/realms/<name>) gets /protocol/openid-connect/token appended."""
    value = parse_url(raw)
    if re.search(r"/realms/[^/]+$", value):
        return value + REALM_TOKEN_SUFFIX
    return value


_Number = TypeVar("_Number", int, float)


def _between(
    cast: Callable[[str], _Number], low: _Number, high: _Number, what: str
) -> Callable[[str], _Number]:
    """A parser for a number within bounds; the message says which numbers are valid."""
    shown = "{:g}" if cast is float else "{}"
    rule = f"valid values are {what} from {shown.format(low)} to {shown.format(high)}"

    def parse(raw: str) -> _Number:
        try:
            value = cast(raw.strip())
        except ValueError:
            raise ValueError(rule) from None
        if not low <= value <= high:
            raise ValueError(rule)
        return value

    return parse


def int_between(low: int, high: int) -> Callable[[str], int]:
    return _between(int, low, high, "whole numbers")


def float_between(low: float, high: float) -> Callable[[str], float]:
    return _between(float, low, high, "numbers of seconds")


_Choice = TypeVar("_Choice", bound=str)


def choice_of(choices: tuple[_Choice, ...], normalize: Callable[[str], str]) -> Callable[[str], _Choice]:
    """A parser that returns the matching member of ``choices``, so a Literal-typed tuple types the value."""

    def parse(raw: str) -> _Choice:
        value = normalize(raw.strip())
        for choice in choices:
            if choice == value:
                return choice
        raise ValueError("valid values are " + ", ".join(choices))

    return parse


def parse_path(raw: str) -> Path:
    return Path(raw.strip()).expanduser()


def parse_context(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
        raise ValueError(
            "valid values are context names as `flightctl login --context NAME` takes them "
            "(letters, digits, '.', '_', '-'), or default"
        )
    return value


def parse_existing_file(raw: str) -> Path:
    value = parse_path(raw)
    if not value.is_file():
        raise ValueError("no such regular file; give the path of an existing file")
    return value


def parse_org_uuid(raw: str) -> str:
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise ValueError(
            "valid values are organization UUIDs like 00000000-0000-0000-0000-000000000000 "
            "(`flightctl get organizations` lists yours)"
        ) from None


def parse_csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def parse_networks(raw: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks (never "everyone")."""
    networks = parse_csv(raw)
    for entry in networks:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network; give addresses like 10.0.0.5 or 10.0.0.0/24"
            ) from None
    return networks


def parse_url_path(raw: str) -> str:
    value = raw.strip()
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError("valid values are URL paths starting with '/', such as /mcp")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Option(Generic[T]):
    """One setting: its environment variable, its flag, its default (as text), parser, help and group."""

    env: str
    flag: str
    default: str | None
    parse: Callable[[str], T]
    help: str
    group: str
    default_doc: str | None = None
    is_bool: bool = False
    secret: bool = False

    @property
    def shown_default(self) -> str:
        """The default as the documentation and ``--help`` show it."""
        if self.default_doc is not None:
            return self.default_doc
        return "(unset)" if self.default is None else self.default


def home_dir(environ: Mapping[str, str]) -> Path:
    """The home directory as the given environment names it (``HOME``), else the process's own."""
    home = environ.get("HOME")
    return Path(home) if home else Path.home()


def default_log_file(environ: Mapping[str, str]) -> Path:
    """~/.local/share/flightctl-mcp/flightctl-mcp.log, honouring XDG_DATA_HOME."""
    base = environ.get("XDG_DATA_HOME") or str(home_dir(environ) / ".local" / "share")
    return Path(base) / "flightctl-mcp" / "flightctl-mcp.log"


def default_audit_log_file(log_file: Path) -> Path:
    """flightctl-mcp-audit.log in the log file's directory."""
    return log_file.with_name("flightctl-mcp-audit.log")


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """~/.local/state/flightctl-mcp, honouring XDG_STATE_HOME: rotated tokens of env-configured sessions."""
    base = environ.get("XDG_STATE_HOME") or str(home_dir(environ) / ".local" / "state")
    return Path(base) / "flightctl-mcp"


# --------------------------------------------------------------------------------------------------
# Layered raw values
# --------------------------------------------------------------------------------------------------

# Layers, lowest priority first; a value remembers the layer it came from so errors can name it.
LAYER_DEFAULT, LAYER_FILE, LAYER_ENV, LAYER_FLAG = 0, 1, 2, 3


@dataclass(frozen=True)
class _Raw:
    text: str
    layer: int
    where: str  # "environment variable X", "flag --x", "client.yaml key a.b"


class Values:
    """Raw values of every option from every layer; ``get`` parses the winner and names it on error."""

    def __init__(
        self, options: Iterable[Option[Any]], flags: Mapping[str, str], environ: Mapping[str, str]
    ) -> None:
        self._raw: dict[str, _Raw] = {}
        self._options = {opt.env: opt for opt in options}
        for name, text in flags.items():
            if name not in self._options:
                raise ConfigurationError(f"Unknown setting {name!r}; valid ones are listed by --help.")
            if text.strip():
                self._raw[name] = _Raw(text, LAYER_FLAG, f"flag {self._options[name].flag}")
        for opt in self._options.values():
            text = environ.get(opt.env, "")
            if opt.env not in self._raw and text.strip():
                self._raw[opt.env] = _Raw(text, LAYER_ENV, f"environment variable {opt.env}")

    def add_file_value(self, env: str, text: str | None, key: str, path: Path) -> None:
        """client.yaml supplies a value only where neither the environment nor a flag did."""
        if env not in self._options:
            raise KeyError(env)  # a client.yaml key mapped to an option the table does not have
        if text is not None and str(text).strip() and env not in self._raw:
            self._raw[env] = _Raw(str(text), LAYER_FILE, f"key {key} of {path}")

    def layer(self, opt: Option[Any]) -> int:
        raw = self._raw.get(opt.env)
        return raw.layer if raw else LAYER_DEFAULT

    def is_set(self, opt: Option[Any]) -> bool:
        return opt.env in self._raw

    def where(self, opt: Option[Any]) -> str | None:
        """Where the value in force came from ("environment variable X", "key k of <file>"); None if unset."""
        raw = self._raw.get(opt.env)
        return raw.where if raw else None

    def get(self, opt: Option[T]) -> T:
        raw = self._raw.get(opt.env)
        if raw is None:
            if opt.default is None:
                raise LookupError(opt.env)  # callers use get_or_none for options without default
            return opt.parse(opt.default)
        try:
            return opt.parse(raw.text)
        except ValueError as exc:
            shown = "(hidden)" if opt.secret else repr(raw.text)
            raise ConfigurationError(f"Invalid {opt.env} from {raw.where}: {shown}; {exc}.") from None

    def get_or_none(self, opt: Option[T]) -> T | None:
        if opt.env not in self._raw and opt.default is None:
            return None
        return self.get(opt)
