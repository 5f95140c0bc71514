"""No oversell under real concurrency: many gunicorn processes take orders at once while two RQ
workers run the sagas, on SQLite (BEGIN IMMEDIATE + busy timeout) and PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers import create_product, order_body
from tests.integration.saga_support import (
    integrity_problems,
    merchant_with_stock,
    stock_of,
    wait_until_final,
)
from tests.servers import GunicornServer, WorkerProcess, settings_of


def place_all(url: str, headers: dict, bodies: list[dict]) -> list[requests.Response]:
    """POST every body at the same moment (a barrier releases all threads together)."""
    barrier = threading.Barrier(len(bodies))

    def place(body):
        barrier.wait()
        return requests.post(f"{url}/api/v1/orders", json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(place, bodies))


@pytest.mark.slow
def test_64_concurrent_orders_for_the_last_10_units_sell_exactly_10(app, tmp_path):
    client = app.test_client()
    merchant = merchant_with_stock(app, client, stock=10)
    one_unit = order_body(items=[{"sku": "SKU-1", "quantity": 1}])
    settings = settings_of(app)
    with (
        GunicornServer(settings, tmp_path, workers=4) as server,
        WorkerProcess(settings, tmp_path, name="w1"),
        WorkerProcess(settings, tmp_path, name="w2"),
    ):
        answers = place_all(server.url, merchant, [one_unit] * 64)
        assert [a.status_code for a in answers] == [202] * 64, [
            a.text for a in answers if a.status_code != 202
        ][:3]
        final = wait_until_final(app, [a.json()["id"] for a in answers], timeout=120)
        assert "database is locked" not in server.log_text()

    outcomes = sorted(final.values(), key=str)
    assert outcomes.count(("completed", None)) == 10
    assert outcomes.count(("failed", "out_of_stock")) == 54
    assert stock_of(app) == (0, 0)
    assert integrity_problems(app) == []


@pytest.mark.slow
def test_multi_line_orders_locking_products_in_opposite_orders_never_deadlock(app, tmp_path):
    client = app.test_client()
    merchant = merchant_with_stock(app, client, stock=15, sku="SKU-A")
    create_product(client, merchant, sku="SKU-B", stock=15)
    ab = order_body(items=[{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-B", "quantity": 1}])
    ba = order_body(items=[{"sku": "SKU-B", "quantity": 1}, {"sku": "SKU-A", "quantity": 1}])
    ids = [
        client.post("/api/v1/orders", json=ab if i % 2 else ba, headers=merchant).get_json()["id"]
        for i in range(20)
    ]
    settings = settings_of(app)
    with (
        WorkerProcess(settings, tmp_path, name="w1") as first,
        WorkerProcess(settings, tmp_path, name="w2") as second,
        WorkerProcess(settings, tmp_path, name="w3") as third,
    ):
        final = wait_until_final(app, ids, timeout=90)
        logs = first.log_text() + second.log_text() + third.log_text()
    assert "deadlock" not in logs.lower()
    assert sorted(final.values(), key=str).count(("completed", None)) == 15
    assert stock_of(app, "SKU-A") == stock_of(app, "SKU-B") == (0, 0)
    assert integrity_problems(app) == []
