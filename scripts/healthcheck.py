"""The container HEALTHCHECK: GET a path on the local server (HTTPS when TLS is configured).

With mutual TLS the check presents ORDERPROCESSING_HEALTHCHECK_CLIENT_CERT / _KEY when set.
Exit 0 when the answer is 200, else 1. Standard library only: it runs every few seconds.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request


def main(path: str = "/healthz") -> int:
    port = os.environ.get("PORT") or os.environ.get("ORDERPROCESSING_SERVER_PORT") or "8000"
    context = None
    scheme = "http"
    if os.environ.get("ORDERPROCESSING_TLS_CERT_FILE"):
        scheme = "https"
        # Loopback to ourselves: the certificate names the public host, not 127.0.0.1.
        context = ssl._create_unverified_context()  # noqa: S323 - loopback self-check only
        cert = os.environ.get("ORDERPROCESSING_HEALTHCHECK_CLIENT_CERT")
        if cert:
            context.load_cert_chain(cert, os.environ.get("ORDERPROCESSING_HEALTHCHECK_CLIENT_KEY"))
    url = f"{scheme}://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4, context=context) as response:  # noqa: S310 - fixed local URL
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
