"""/.well-known/security.txt (RFC 9116): how to report a vulnerability. Public, no login."""

from __future__ import annotations

import datetime as dt

from flask import current_app, request

from app.web import web

# RFC 9116 wants an Expires under a year ahead; regenerated on every request, it never goes stale.
VALID_FOR = dt.timedelta(days=180)


@web.get("/.well-known/security.txt")
def security_txt():
    config = current_app.config
    expires = (dt.datetime.now(dt.UTC) + VALID_FOR).replace(microsecond=0)
    lines = [
        f"Contact: {config['SECURITY_CONTACT']}",
        f"Expires: {expires.isoformat().replace('+00:00', 'Z')}",
        "Preferred-Languages: en",
        f"Canonical: {request.url_root.rstrip('/')}/.well-known/security.txt",
    ]
    if config["SECURITY_POLICY_URL"]:
        lines.append(f"Policy: {config['SECURITY_POLICY_URL']}")
    body = "\n".join(lines) + "\n"
    return body, 200, {"Content-Type": "text/plain; charset=utf-8",
                       "Cache-Control": "public, max-age=86400"}
