"""docs/configuration.md rendered from ``config.OPTIONS``: documentation only, never on the serving path."""

from __future__ import annotations

from typing import Any

from config import OPTIONS, Option

__all__ = ["render_configuration_doc"]


def render_configuration_doc() -> str:
    """docs/configuration.md, generated from OPTIONS so the reference cannot drift from the code."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from config.OPTIONS by `python main.py config-doc`; do not edit by hand. -->",
        "",
        "Every setting can come from four places. Lowest priority first: the built-in default,",
        "`client.yaml` (written by `flightctl login`; both its current and its legacy format are read),",
        "the environment, and the command-line flag. An invalid value stops the server at start-up",
        "with a message naming the setting, the value and what is valid.",
        "",
        "TLS towards Flight Control is decided in this order: `CA_CERT_PATH`, then",
        "`INSECURE_SKIP_VERIFY`, then the CA in client.yaml (`certificate-authority` or",
        "`certificate-authority-data`), then the system CA bundle. client.yaml's `tls-server-name` is",
        "honoured.",
        "",
        "Credentials: a refresh token with `OIDC_TOKEN_URL` is exchanged at the identity provider; a",
        "refresh token from a current client.yaml is exchanged through Flight Control's",
        "`/api/v1/auth/<provider>/token` proxy (unless `OIDC_TOKEN_URL` is set); an access token alone is",
        "used as it is. Rotated tokens are written back to the client.yaml they came from (atomically,",
        "keeping its other keys and mode, under a lock on `client.yaml.lock` shared by concurrent",
        "processes; read again before each refresh), or, for a `REFRESH_TOKEN` from the environment, kept",
        "in a 0600 state file under `$XDG_STATE_HOME/flightctl-mcp/` (default",
        "`~/.local/state/flightctl-mcp/`) named by a hash of the configured token, and resumed on the",
        "next start. A read-only client.yaml leaves them in memory (logged once; `check` warns).",
    ]
    groups: dict[str, list[Option[Any]]] = {}
    for opt in OPTIONS:
        groups.setdefault(opt.group, []).append(opt)
    for group, options in groups.items():
        lines += ["", f"## {group}", "", "| Variable | Flag | Default | Meaning |", "|---|---|---|---|"]
        for opt in options:
            flag = f"`{opt.flag}` / `--no-{opt.flag[2:]}`" if opt.is_bool else f"`{opt.flag}`"
            lines.append(f"| `{opt.env}` | {flag} | {_md(opt.shown_default)} | {_md(opt.help)} |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")
