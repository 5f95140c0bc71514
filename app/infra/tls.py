"""gunicorn's TLS settings from ours: HTTPS with a certificate, mutual TLS with a client CA."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from config import ConfigError


def _readable(name: str, value: str) -> str:
    if not Path(value).is_file():
        raise ConfigError(f"ORDERPROCESSING_{name} names {value}, which is not a readable file")
    return value


def gunicorn_tls_options(settings: dict[str, Any]) -> dict[str, Any]:
    """certfile/keyfile/ca_certs/cert_reqs for gunicorn; empty when TLS is not configured."""
    cert, key, client_ca = (
        settings.get("TLS_CERT_FILE"), settings.get("TLS_KEY_FILE"),
        settings.get("TLS_CLIENT_CA_FILE"),
    )
    if not cert:
        if key or client_ca:
            raise ConfigError(
                "ORDERPROCESSING_TLS_KEY_FILE / TLS_CLIENT_CA_FILE need "
                "ORDERPROCESSING_TLS_CERT_FILE (the server certificate)"
            )
        return {}
    options: dict[str, Any] = {
        "certfile": _readable("TLS_CERT_FILE", cert),
        # A PEM holding both the certificate and its key is fine too.
        "keyfile": _readable("TLS_KEY_FILE", key) if key else None,
    }
    if client_ca:
        options["ca_certs"] = _readable("TLS_CLIENT_CA_FILE", client_ca)
        options["cert_reqs"] = ssl.CERT_REQUIRED  # no certificate from our CA: no handshake
    return options


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    """TLS 1.2 at least; no renegotiation."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION
    return context
