"""TLS towards Flight Control and the identity provider: which CA decides, and the one SSLContext.

``TLSSettings`` says how to verify one server and which setting decided it; ``api_tls``/``auth_tls``
apply the documented order (CA_CERT_PATH, INSECURE_SKIP_VERIFY, client.yaml's CA, the system bundle);
``TLSSettings.ssl_context()`` builds the context every HTTP library here shares, honouring
client.yaml's ``tls-server-name``.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client_yaml import ClientFile
from errors import ConfigurationError

__all__ = ["TLSSettings", "api_tls", "auth_tls"]


class _ServerNameContext(ssl.SSLContext):
    """An SSLContext that verifies (and sends SNI for) ``tls-server-name`` instead of the URL's host.

    httpx and urllib3 both pass the URL host as ``server_hostname``; overriding it here honours
    client.yaml's ``tls-server-name`` for every library that takes an SSLContext.
    """

    server_name_override: str = ""

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["server_hostname"] = self.server_name_override
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        kwargs["server_hostname"] = self.server_name_override
        return super().wrap_bio(*args, **kwargs)


@dataclass(frozen=True)
class TLSSettings:
    """How to verify one server's certificate; ``source`` says which setting decided it."""

    verify: bool = True
    ca_file: Path | None = None
    ca_data: str | None = field(default=None, repr=False)
    server_name: str | None = None
    source: str = "system CA bundle"

    def ssl_context(self) -> ssl.SSLContext:
        """The SSLContext for this server, built once and shared (contexts are thread-safe)."""
        return _build_ssl_context(self)


@functools.lru_cache(maxsize=32)
def _build_ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    ctx: ssl.SSLContext
    if tls.server_name:
        ctx = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.server_name_override = tls.server_name
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        if tls.ca_file is not None:
            ctx.load_verify_locations(cafile=str(tls.ca_file))
        elif tls.ca_data is not None:
            ctx.load_verify_locations(cadata=tls.ca_data)
        else:
            ctx.load_default_certs()
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigurationError(
            f"The CA certificate from {tls.source} could not be loaded ({exc}). "
            "Point it at a PEM file holding the CA that signed the server's certificate."
        ) from exc
    return ctx


def api_tls(ca_cert_path: Path | None, insecure: bool, client_file: ClientFile | None) -> TLSSettings:
    """CA_CERT_PATH, then INSECURE_SKIP_VERIFY, then the client.yaml CA, then the system bundle."""
    server_name = client_file.server_name if client_file else None
    if ca_cert_path is not None:
        return TLSSettings(
            ca_file=ca_cert_path, server_name=server_name, source=f"CA_CERT_PATH ({ca_cert_path})"
        )
    if insecure:
        return TLSSettings(verify=False, server_name=server_name, source="INSECURE_SKIP_VERIFY")
    if client_file and client_file.ca_file:
        if not client_file.ca_file.is_file():
            raise ConfigurationError(
                f"{client_file.path}: service.certificate-authority names {str(client_file.ca_file)!r}, "
                "which does not exist. Fix the path, set CA_CERT_PATH, or run `flightctl login` again."
            )
        return TLSSettings(
            ca_file=client_file.ca_file,
            server_name=server_name,
            source=f"{client_file.ca_key} of client.yaml",
        )
    if client_file and client_file.ca_data:
        return TLSSettings(
            ca_data=client_file.ca_data,
            server_name=server_name,
            source=f"{client_file.ca_key} of client.yaml",
        )
    return TLSSettings(server_name=server_name)


def auth_tls(explicit: bool, client_file: ClientFile | None, api: TLSSettings) -> TLSSettings:
    """TLS towards the identity provider: env/flag TLS (``explicit``), else the provider's own CA, else
    the API's."""
    if explicit or client_file is None:
        return api
    if client_file.auth_insecure:
        return TLSSettings(
            verify=False, source="authentication.auth-provider.insecureSkipVerify of client.yaml"
        )
    if client_file.auth_ca_file is not None:
        if not client_file.auth_ca_file.is_file():
            raise ConfigurationError(
                f"{client_file.path}: the identity provider CA file {str(client_file.auth_ca_file)!r} "
                "does not exist. Fix the path, set CA_CERT_PATH, or run `flightctl login` again."
            )
        return TLSSettings(ca_file=client_file.auth_ca_file, source="identity provider CA of client.yaml")
    return api
