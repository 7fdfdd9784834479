"""client.yaml as `flightctl login` writes it, in both its current and its legacy (≤ 0.10) format.

Reading only: ``load_client_file`` returns the plain option values the file supplies (``values``,
keyed by the option's environment-variable name, lowest priority after the defaults) and what
config.py needs beyond them (CA, SNI, token set, identity provider). A malformed file raises
``ConfigurationError`` naming the file, the key and what to do.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml

from config_values import home_dir, parse_bool
from errors import ConfigurationError

__all__ = [
    "ClientFile",
    "FileValue",
    "TokenToUse",
    "client_config_file_name",
    "default_client_config_dir",
    "default_client_config_path",
    "load_client_file",
    "missing_context_message",
]

TokenToUse = Literal["access", "id"]


class FileValue(NamedTuple):
    """One option's raw text from client.yaml and the key it was read from."""

    env: str
    text: str | None
    key: str


@dataclass(frozen=True)
class ClientFile:
    """What client.yaml says beyond plain option values: CA, SNI, token set and provider."""

    path: Path
    ca_file: Path | None = None
    ca_data: str | None = None
    ca_key: str = ""
    server_name: str | None = None
    access_token: str | None = None
    id_token: str | None = None
    refresh_token: str | None = None
    token_to_use: TokenToUse = "access"
    access_token_expiry: datetime | None = None
    provider_name: str | None = None
    auth_ca_file: Path | None = None
    auth_insecure: bool | None = None
    legacy: bool = False
    values: tuple[FileValue, ...] = ()


def default_client_config_dir(environ: Mapping[str, str]) -> Path:
    """Where `flightctl` keeps its client files: os.UserConfigDir()/flightctl."""
    base = environ.get("XDG_CONFIG_HOME") or str(home_dir(environ) / ".config")
    return Path(base) / "flightctl"


def client_config_file_name(context: str | None) -> str:
    """client.yaml for the default context, client_<context>.yaml for another, as `flightctl --context`."""
    return "client.yaml" if not context or context == "default" else f"client_{context}.yaml"


def default_client_config_path(environ: Mapping[str, str]) -> Path:
    """Where `flightctl login` writes client.yaml: os.UserConfigDir()/flightctl/client.yaml."""
    return default_client_config_dir(environ) / client_config_file_name(None)


def _mapping(value: object, key: str, path: Path) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{path}: key {key} must be a mapping, found {type(value).__name__}. "
            "Run `flightctl login` again to rewrite the file, or point CLIENT_CONFIG_PATH elsewhere."
        )
    return value


def _str_or_none(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _yaml_bool(value: object, key: str, path: Path) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    try:
        return parse_bool(str(value))
    except ValueError:
        raise ConfigurationError(
            f"{path}: key {key} is {_shown(key, value)}; valid values are true or false."
        ) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, never the offending line: in client.yaml it may well hold a token."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return "it is not valid YAML"
    where = ""
    if exc.problem_mark:
        where = f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
    if exc.context_mark and exc.context_mark.line != getattr(exc.problem_mark, "line", None):
        where += f" (what it concerns starts at line {exc.context_mark.line + 1})"
    what = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
    return f"{what}{where}; the line is not shown, as it may hold a token"


def _shown(key: str, value: object) -> str:
    """A value for an error message; values under ``authentication`` are never shown (credentials)."""
    if key.startswith("authentication."):
        return "a value that is not shown (it sits among the credentials)"
    return repr(value)[:100]


def _read_client_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read client configuration {path} ({exc.strerror}). "
            "Fix its permissions, run `flightctl login`, or set CLIENT_CONFIG_PATH to another file."
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"Client configuration {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
            f"offset {exc.start}); it may be another file or saved in another encoding. Run `flightctl "
            "login` again to rewrite it, or set CLIENT_CONFIG_PATH to another file."
        ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(
            f"Cannot parse client configuration {path}: {_yaml_problem(exc)}. Run `flightctl login` "
            "again to rewrite it, or set CLIENT_CONFIG_PATH to another file."
        ) from None
    return _mapping(document, "(top level)", path)


def _decode_ca_data(value: str, key: str, path: Path) -> str:
    try:
        pem = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ConfigurationError(
            f"{path}: key {key} is not base64-encoded PEM; valid values are base64 of a PEM CA certificate."
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigurationError(f"{path}: key {key} does not hold a PEM certificate once base64-decoded.")
    return pem


def _parse_expiry(value: object, key: str, path: Path) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigurationError(
            f"{path}: key {key} is {_shown(key, value)}; valid values are RFC 3339 times like "
            "2026-08-21T11:32:18Z."
        ) from None


def _relative_file(value: str | None, path: Path) -> Path | None:
    if value is None:
        return None
    file = Path(value).expanduser()
    return file if file.is_absolute() else path.parent / file


def load_client_file(path: Path) -> ClientFile:
    """Read client.yaml in either format: plain option values in ``values``, the rest in fields."""
    found: list[FileValue] = []
    doc = _read_client_yaml(path)
    service = _mapping(doc.get("service"), "service", path)
    authentication = _mapping(doc.get("authentication"), "authentication", path)
    provider_cfg = _mapping(authentication.get("auth-provider"), "authentication.auth-provider", path)

    found.append(FileValue("API_BASE_URL", _str_or_none(service.get("server")), "service.server"))
    found.append(FileValue("ORG_ID", _str_or_none(doc.get("organization")), "organization"))
    insecure = _yaml_bool(service.get("insecureSkipVerify"), "service.insecureSkipVerify", path)
    if insecure is not None:
        found.append(FileValue("INSECURE_SKIP_VERIFY", str(insecure), "service.insecureSkipVerify"))

    ca_file = _str_or_none(service.get("certificate-authority"))
    ca_data = _str_or_none(service.get("certificate-authority-data"))
    if ca_file and ca_data:
        raise ConfigurationError(
            f"{path}: service.certificate-authority and service.certificate-authority-data are both set; "
            "keep one of them."
        )
    common: dict[str, Any] = {
        "path": path,
        "ca_file": _relative_file(ca_file, path),
        "ca_data": _decode_ca_data(ca_data, "service.certificate-authority-data", path) if ca_data else None,
        "ca_key": "service.certificate-authority" if ca_file else "service.certificate-authority-data",
        "server_name": _str_or_none(service.get("tls-server-name")),
    }
    if "config" in provider_cfg or "token" in authentication:
        return _legacy_client_file(common, authentication, provider_cfg, found)
    return _current_client_file(common, authentication, provider_cfg, found)


def _legacy_client_file(
    common: dict[str, Any],
    authentication: Mapping[str, Any],
    provider_cfg: Mapping[str, Any],
    found: list[FileValue],
) -> ClientFile:
    """flightctl ≤ 0.10: auth-provider.config {server, client-id, refresh-token}, authentication.token."""
    path: Path = common["path"]
    config = _mapping(provider_cfg.get("config"), "authentication.auth-provider.config", path)
    prefix = "authentication.auth-provider.config."
    found.append(FileValue("OIDC_TOKEN_URL", _str_or_none(config.get("server")), prefix + "server"))
    found.append(FileValue("OIDC_CLIENT_ID", _str_or_none(config.get("client-id")), prefix + "client-id"))
    return ClientFile(
        **common,
        values=tuple(found),
        access_token=_str_or_none(authentication.get("token")),
        refresh_token=_str_or_none(config.get("refresh-token")),
        access_token_expiry=_parse_expiry(
            config.get("access-token-expiry"), prefix + "access-token-expiry", path
        ),
        auth_ca_file=_relative_file(_str_or_none(config.get("certificate-authority")), path),
        legacy=True,
    )


def _current_client_file(
    common: dict[str, Any],
    authentication: Mapping[str, Any],
    provider_cfg: Mapping[str, Any],
    found: list[FileValue],
) -> ClientFile:
    """flightctl 1.x: tokens in authentication, the AuthProvider object under auth-provider.auth-provider."""
    path: Path = common["path"]
    key = "authentication.auth-provider.auth-provider"
    provider = _mapping(provider_cfg.get("auth-provider"), key, path)
    metadata = _mapping(provider.get("metadata"), key + ".metadata", path)
    spec = _mapping(provider.get("spec"), key + ".spec", path)
    found.append(FileValue("OIDC_CLIENT_ID", _str_or_none(spec.get("clientId")), key + ".spec.clientId"))
    token_to_use = _str_or_none(authentication.get("token-to-use")) or "access"
    if token_to_use not in ("access", "id"):
        raise ConfigurationError(
            f"{path}: key authentication.token-to-use is "
            f"{_shown('authentication.token-to-use', token_to_use)}; valid values are access, id."
        )
    return ClientFile(
        **common,
        values=tuple(found),
        access_token=_str_or_none(authentication.get("access-token")),
        id_token=_str_or_none(authentication.get("id-token")),
        refresh_token=_str_or_none(authentication.get("refresh-token")),
        token_to_use="id" if token_to_use == "id" else "access",
        access_token_expiry=_parse_expiry(
            authentication.get("access-token-expiry"), "authentication.access-token-expiry", path
        ),
        provider_name=_str_or_none(metadata.get("name")),
        auth_ca_file=_relative_file(_str_or_none(provider_cfg.get("ca-file")), path),
        auth_insecure=_yaml_bool(
            provider_cfg.get("insecureSkipVerify"), "authentication.auth-provider.insecureSkipVerify", path
        ),
    )


def missing_context_message(path: Path, context: str | None) -> str:
    """No client file for this context: name the file looked for and the contexts that exist."""
    name = context or "default"
    known = sorted(
        "default" if p.name == "client.yaml" else p.stem.removeprefix("client_")
        for p in path.parent.glob("client*.yaml")
        if p.name == "client.yaml" or p.name.startswith("client_")
    )
    shown = ", ".join(known) if known else "none"
    login = "flightctl login <API URL>" + ("" if name == "default" else f" --context {name}")
    return (
        f"No client configuration for context {name!r}: {path} does not exist (contexts found in "
        f"{path.parent}: {shown}). Run `{login}`, or choose an existing context with FLIGHTCTL_CONTEXT "
        "or --context."
    )
