"""flask smoke-test URL: place a synthetic order on a running deployment and follow it to the end.

The gate for blue-green switches and canary steps: exit 0 only when health, readiness, the order
API, the saga (worker) and the order's timeline all work on the deployment at URL.
"""

from __future__ import annotations

import time
import uuid

import click
import requests
from flask.cli import with_appcontext

from app.auth.actors import cli_actor
from app.services import smoke

EXPECTED_EVENTS = ("order.created", "payment.captured", "shipment.created", "order.completed")


class SmokeFailure(Exception):
    pass


def _check(label: str, call):
    started = time.monotonic()
    try:
        result = call()
    except requests.RequestException as exc:
        raise SmokeFailure(f"{label}: {type(exc).__name__}") from None
    click.echo(f"ok   {label} ({(time.monotonic() - started) * 1000:.0f} ms)")
    return result


def _expect(response: requests.Response, status: int, label: str) -> requests.Response:
    if response.status_code != status:
        raise SmokeFailure(f"{label}: HTTP {response.status_code}, expected {status}")
    return response


def run_smoke(base: str, session: requests.Session, creds, timeout: float) -> str:
    """The checks, in order; returns the order id or raises SmokeFailure."""
    _check("GET /healthz", lambda: _expect(session.get(base + "/healthz", timeout=5), 200,
                                            "/healthz"))
    _check("GET /readyz", lambda: _expect(session.get(base + "/readyz", timeout=5), 200,
                                          "/readyz"))
    headers = {"X-API-Key": creds.api_key, "Idempotency-Key": f"smoke-{uuid.uuid4().hex}"}
    body = {
        "items": [{"sku": creds.sku, "quantity": 1}],
        "customer": {"email": "smoke-test@example.invalid", "name": "Smoke Test"},
        "shipping_address": {"line1": "1 Synthetic Way", "city": "Kuala Lumpur",
                             "postal_code": "50450", "country": "MY"},
        "payment": {"token": "tok_visa"},
    }
    placed = _check("POST /api/v1/orders", lambda: _expect(
        session.post(base + "/api/v1/orders", json=body, headers=headers, timeout=10), 202,
        "POST /api/v1/orders"))
    order_id = placed.json()["id"]
    deadline = time.monotonic() + timeout

    def wait_final():
        while True:
            order = _expect(session.get(f"{base}/api/v1/orders/{order_id}", headers=headers,
                                        timeout=5), 200, "GET order").json()
            if order["status"] in ("completed", "failed", "cancelled"):
                return order
            if time.monotonic() > deadline:
                raise SmokeFailure(f"order {order_id} still {order['status']} after {timeout:g}s "
                                   "(are workers running?)")
            time.sleep(0.25)

    order = _check(f"order {order_id} reached a final status", wait_final)
    if order["status"] != "completed":
        raise SmokeFailure(f"order {order_id} ended {order['status']} "
                           f"({order.get('failure_reason')})")
    events = _check("GET events", lambda: _expect(session.get(
        f"{base}/api/v1/orders/{order_id}/events", headers=headers, timeout=5), 200,
        "GET events").json()["data"])
    missing = [e for e in EXPECTED_EVENTS if e not in {x["type"] for x in events}]
    if missing:
        raise SmokeFailure(f"order {order_id} timeline lacks {', '.join(missing)}")
    return order_id


@click.command("smoke-test")
@click.argument("url")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the saga.")
@click.option("--ca-cert", type=click.Path(exists=True), help="CA bundle for an HTTPS URL.")
@click.option("--client-cert", type=click.Path(exists=True), help="Client certificate (mTLS).")
@click.option("--client-key", type=click.Path(exists=True), help="Its private key.")
@with_appcontext
def smoke_test_command(url: str, timeout: float, ca_cert, client_cert, client_key):
    """Place a synthetic order at URL and check it completes end to end (exit 1 if not)."""
    actor = cli_actor()
    creds = smoke.prepare_smoke_credentials(actor)
    session = requests.Session()
    session.verify = ca_cert or True
    if client_cert:
        session.cert = (client_cert, client_key) if client_key else client_cert
    started = time.monotonic()
    try:
        order_id = run_smoke(url.rstrip("/"), session, creds, timeout)
    except SmokeFailure as exc:
        click.echo(f"FAIL {exc}", err=True)
        raise SystemExit(1) from None
    finally:
        smoke.retire_smoke_key(creds.key_id, actor)
    click.echo(f"smoke test passed: order {order_id} completed in "
               f"{time.monotonic() - started:.1f}s")
