"""Where rotated tokens live between refreshes, restarts and processes.

An identity provider that rotates refresh tokens (Keycloak with "Revoke Refresh Token") accepts each
refresh token once. Whoever refreshes must therefore leave the new refresh token where the next user of
the session will look for it:

- ``ClientYamlStore``: the client.yaml the tokens came from, shared with the `flightctl` CLI. The new
  tokens are written back as the CLI does (the same keys; the rest of the file kept), but atomically:
  a temporary file in the same directory, then ``os.replace``, with the file's mode kept.
- ``StateFileStore``: a private JSON file (0600) for a refresh token given in the environment, named by a
  hash of the configured token (never the token itself), read on the next start.

Both take an exclusive ``flock`` on a sibling ``<name>.lock`` around read-refresh-write, so server
processes sharing a session take turns instead of spending the same refresh token twice. Every method
blocks: call them from a worker thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

__all__ = [
    "ClientYamlStore",
    "LockTimeout",
    "StateFileStore",
    "StoredTokens",
    "TokenStore",
    "state_file_for",
    "unwritable_reason",
]

#: How often a waiting process retries the lock.
_LOCK_POLL = 0.05


class LockTimeout(Exception):
    """Another process held the lock file longer than a refresh can take."""


@dataclass(frozen=True)
class StoredTokens:
    """One session's tokens as stored: the refresh token, and the access/id tokens with their expiry."""

    refresh_token: str
    access_token: str | None = None
    id_token: str | None = None
    expires_at: float | None = None  # epoch seconds


class TokenStore(Protocol):
    """A place rotated tokens are read from before a refresh and written to after it."""

    @property
    def path(self) -> Path:
        """The file that holds the tokens."""
        ...

    #: True when the configured refresh token was read from this very file at start-up.
    holds_configured_token: bool

    def locked(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        """Hold the shared lock (best effort when the directory is read-only); raises LockTimeout."""
        ...

    def load(self) -> StoredTokens | None:
        """The tokens stored now, or None when there are none (or the file is gone)."""
        ...

    def save(self, tokens: StoredTokens) -> None:
        """Store ``tokens``; raises OSError when the file cannot be written."""
        ...


def unwritable_reason(path: Path) -> str | None:
    """Why rotated tokens cannot be written to ``path`` (read-only file or directory), or None."""
    real = Path(os.path.realpath(path))
    if real.exists() and not os.access(real, os.W_OK):
        return f"{real} is not writable"
    directory = real.parent
    while not directory.exists() and directory != directory.parent:  # a state directory made on first use
        directory = directory.parent
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"the directory {directory} is not writable"
    return None


@contextlib.contextmanager
def _flock(lock_path: Path, timeout: float) -> Iterator[None]:
    """An exclusive flock on ``lock_path``; without a writable directory, no lock (nothing is written)."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT):
            yield
            return
        raise
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another process held {lock_path} for more than {timeout:g} s"
                    ) from None
                time.sleep(_LOCK_POLL)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _replace_atomically(path: Path, data: bytes, *, keep_mode: bool) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``.

    The mode is the file's own when ``keep_mode`` (client.yaml is the user's), else 0600.
    """
    real = Path(os.path.realpath(path))  # a symlinked client.yaml stays a symlink to the new content
    mode = 0o600
    if keep_mode:
        with contextlib.suppress(FileNotFoundError):
            mode = real.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _epoch(value: object) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp()
    if isinstance(value, str) and value:
        try:
            return _epoch(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class _FileStore:
    """What both stores share: the file, its lock beside it, a repr without secrets."""

    #: True when the configured refresh token was read from this very file at start-up.
    holds_configured_token = False

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self._path)!r})"

    def locked(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        real = Path(os.path.realpath(self._path))
        return _flock(real.with_name(real.name + ".lock"), timeout)


class ClientYamlStore(_FileStore):
    """The tokens inside a `flightctl login` client.yaml (current format, or the legacy ≤ 0.10 one)."""

    holds_configured_token = True

    def __init__(self, path: Path, *, legacy: bool = False) -> None:
        super().__init__(path)
        self._legacy = legacy

    def _document(self) -> dict[str, Any] | None:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError:
            return None  # half-written by a tool that does not replace atomically; next time
        return document if isinstance(document, dict) else None

    def load(self) -> StoredTokens | None:
        document = self._document()
        if document is None:
            return None
        auth = document.get("authentication")
        if not isinstance(auth, Mapping):
            return None
        if self._legacy:
            provider = auth.get("auth-provider")
            config = provider.get("config") if isinstance(provider, Mapping) else None
            config = config if isinstance(config, Mapping) else {}
            refresh = _text(config.get("refresh-token"))
            return (
                StoredTokens(
                    refresh,
                    access_token=_text(auth.get("token")),
                    expires_at=_epoch(config.get("access-token-expiry")),
                )
                if refresh
                else None
            )
        refresh = _text(auth.get("refresh-token"))
        if refresh is None:
            return None
        return StoredTokens(
            refresh,
            access_token=_text(auth.get("access-token")),
            id_token=_text(auth.get("id-token")),
            expires_at=_epoch(auth.get("access-token-expiry")),
        )

    def save(self, tokens: StoredTokens) -> None:
        document = self._document()
        if document is None:
            raise FileNotFoundError(
                errno.ENOENT, "client.yaml is gone or no longer a mapping", str(self._path)
            )
        auth = document.setdefault("authentication", {})
        expiry = _rfc3339(tokens.expires_at) if tokens.expires_at is not None else None
        if self._legacy:
            provider = auth.setdefault("auth-provider", {})
            config = provider.setdefault("config", {})
            config["refresh-token"] = tokens.refresh_token
            _set(config, "access-token-expiry", expiry)
            _set(auth, "token", tokens.access_token)
        else:
            auth["refresh-token"] = tokens.refresh_token
            _set(auth, "access-token", tokens.access_token)
            _set(auth, "id-token", tokens.id_token)
            _set(auth, "access-token-expiry", expiry)
        data = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)
        _replace_atomically(self._path, data.encode("utf-8"), keep_mode=True)


def _set(mapping: dict[str, Any], key: str, value: str | None) -> None:
    if value is not None:
        mapping[key] = value


def state_file_for(state_dir: Path, configured_refresh_token: str) -> Path:
    """The state file of a configured refresh token: named by its hash, so the token never shows."""
    digest = hashlib.sha256(configured_refresh_token.encode("utf-8")).hexdigest()[:32]
    return state_dir / f"session-{digest}.json"


class StateFileStore(_FileStore):
    """A private JSON file holding the latest tokens of a session configured in the environment."""

    def locked(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        with contextlib.suppress(OSError):
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return super().locked(timeout)

    def load(self) -> StoredTokens | None:
        try:
            document = json.loads(self._path.read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(document, dict) or not _text(document.get("refresh_token")):
            return None
        expires_at = document.get("expires_at")
        return StoredTokens(
            str(document["refresh_token"]),
            access_token=_text(document.get("access_token")),
            id_token=_text(document.get("id_token")),
            expires_at=float(expires_at) if isinstance(expires_at, int | float) else None,
        )

    def save(self, tokens: StoredTokens) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        document = {
            "refresh_token": tokens.refresh_token,
            "access_token": tokens.access_token,
            "id_token": tokens.id_token,
            "expires_at": tokens.expires_at,
        }
        _replace_atomically(self._path, json.dumps(document).encode("utf-8"), keep_mode=False)
