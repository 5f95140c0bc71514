"""Where outbound HTTP may go: webhook targets must be public addresses (no SSRF inward)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


def resolves_to_public_addresses(url: str) -> bool:
    """True when every address the URL's host resolves to is a public unicast address.

    Loopback, private (RFC 1918, ULA), link-local (cloud metadata at 169.254.169.254), multicast,
    reserved and unspecified addresses are refused, and so is a host that does not resolve.
    """
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return False
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            return False
    return bool(infos)


def private_targets_allowed(config) -> bool:
    """WEBHOOK_ALLOW_PRIVATE_TARGETS, defaulting to allowed outside production (local receivers)."""
    setting = config.get("WEBHOOK_ALLOW_PRIVATE_TARGETS")
    return config["ENV"] != "production" if setting is None else bool(setting)
