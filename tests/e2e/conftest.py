"""A real system for browser tests: gunicorn (2 workers), an RQ worker and the scheduler on
loopback, PostgreSQL and Redis, driven by Debian's headless Chromium through Playwright."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import PASSWORD
from tests.servers import GunicornServer, SchedulerProcess, WorkerProcess, settings_of

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
STAFF = {"admin": "admin", "operator": "operator", "viewer": "viewer"}


@dataclass
class ShiftSystem:
    """The running system and what the browser needs to use it."""

    url: str
    api_headers: dict[str, str]
    shots: Path
    server: GunicornServer
    worker: WorkerProcess

    def place_order(self, payment_token: str) -> str:
        """POST an order through the API; its payment token picks the simulated outcome."""
        body = {
            "items": [{"sku": "BEAN-1", "quantity": 1}],
            "customer": {"email": f"{payment_token}@example.com", "name": "Ana"},
            "shipping_address": {"line1": "1 Jalan Ampang", "city": "Kuala Lumpur",
                                 "postal_code": "50450", "country": "MY"},
            "payment": {"token": payment_token},
        }
        response = requests.post(f"{self.url}/api/v1/orders", json=body,
                                 headers=self.api_headers, timeout=10)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def wait_for_status(self, order_id: str, statuses: set[str], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            response = requests.get(f"{self.url}/api/v1/orders/{order_id}",
                                    headers=self.api_headers, timeout=10)
            status = response.json().get("status")
            if status in statuses:
                return status
            time.sleep(0.2)
        raise AssertionError(
            f"{order_id} stayed {status}; worker log:\n{self.worker.log_text()[-3000:]}"
        )


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from Debian's package (not Playwright's download)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _seed(app) -> dict[str, str]:
    from app.auth.actors import cli_actor
    from app.cli.knowledge_seed import seed_knowledge
    from app.services import accounts, catalog, flags

    with app.app_context():
        for username, role in STAFF.items():
            accounts.create_user(username, PASSWORD, role)
        merchant = accounts.create_merchant("Shift Coffee")
        _key, plain = accounts.create_api_key(merchant.id, "e2e")
        catalog.create_product(merchant.id, sku="BEAN-1", name="Beans", price=4500,
                               currency="MYR", stock=1000)
        flags.ensure_builtin_flags(cli_actor())
        seed_knowledge(cli_actor())
    return {"X-API-Key": plain}


@pytest.fixture
def shift_system(make_app, postgresql_database_url, tmp_path):
    """Seeded staff, a merchant with an API key and stock, the flags and the runbooks."""
    app = make_app(postgresql_database_url)
    headers = _seed(app)
    shots = Path(os.environ.get("E2E_SCREENSHOT_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    settings = settings_of(app)
    # The whole process model of a deployment: web, worker and the recovery scheduler.
    with GunicornServer(settings, tmp_path, workers=2) as server, \
            WorkerProcess(settings, tmp_path, name="e2e") as worker, \
            SchedulerProcess(settings, tmp_path, name="e2e"):
        yield ShiftSystem(url=server.url, api_headers=headers, shots=shots, server=server,
                          worker=worker)
