"""Metrics exact across two gunicorn workers and two RQ workers; request ids in job logs."""

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import admin_headers, create_product, merchant_with_key, order_body
from tests.servers import GunicornServer, WorkerProcess, settings_of

FINAL = {"completed", "failed", "cancelled"}


def scrape_url(url: str) -> dict:
    response = requests.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def wait_final(get_status, order_ids, timeout=60):
    deadline = time.monotonic() + timeout
    pending = set(order_ids)
    while pending and time.monotonic() < deadline:
        pending = {o for o in pending if get_status(o) not in FINAL}
        time.sleep(0.2)
    assert not pending, f"not final: {pending}"


def per_process_posts(multiproc_dir, tmp_path) -> dict[int, float]:
    """POST /api/v1/orders 202s counted in each process's own file."""
    counts = {}
    for path in multiproc_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        alone = tmp_path / f"alone-{pid}"
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        for family in registry.collect():
            for s in family.samples:
                if s.name == "http_requests_total" and s.labels == {
                    "endpoint": "/api/v1/orders", "status": "202"
                }:
                    counts[pid] = counts.get(pid, 0) + s.value
    return {pid: n for pid, n in counts.items() if n}


def test_counters_and_histograms_are_exact_across_gunicorn_and_rq_workers(sqlite_app, tmp_path):
    client = sqlite_app.test_client()
    admin = admin_headers(sqlite_app, client)
    _, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, stock=100)
    multiproc = tmp_path / "prometheus"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    settings = settings_of(sqlite_app)
    tokens = ["tok_visa"] * 12 + ["tok_chargeDeclined"] * 2 + ["tok_flaky"] * 2
    with (
        GunicornServer(settings, tmp_path, workers=2, extra_env=env) as server,
        WorkerProcess(settings, tmp_path, name="m1", extra_env=env),
        WorkerProcess(settings, tmp_path, name="m2", extra_env=env),
    ):
        def post(token):
            response = requests.post(server.url + "/api/v1/orders", headers=merchant,
                                     json=order_body(token=token), timeout=30)
            assert response.status_code == 202, response.text
            return response.json()["id"]

        with ThreadPoolExecutor(max_workers=4) as pool:
            order_ids = list(pool.map(post, tokens))
            # Which gunicorn worker accepts a connection is the kernel's choice; keep placing
            # orders (bounded) until both have taken some, so the sums really span processes.
            extra = 0
            while len(per_process_posts(multiproc, tmp_path)) < 2 and extra < 64:
                order_ids += list(pool.map(post, ["tok_visa"] * 4))
                extra += 4
        for _ in range(5):
            assert requests.get(server.url + "/api/v1/orders/ord_missing", headers=merchant,
                                timeout=10).status_code == 404
        wait_final(
            lambda o: client.get(f"/api/v1/orders/{o}", headers=merchant).get_json()["status"],
            order_ids,
        )
        time.sleep(0.5)  # the last job's outcome is recorded right after its final commit
        scrapes = [scrape_url(server.url) for _ in range(8)]
        # Two gunicorn workers took the orders, and every scrape, whichever worker answered it,
        # shows the same sums.
        assert len(per_process_posts(multiproc, tmp_path)) == 2
    placed = 16 + extra
    expected = {
        ("http_requests_total", (("endpoint", "/api/v1/orders"), ("status", "202"))): placed,
        ("http_request_duration_seconds_count",
         (("endpoint", "/api/v1/orders"), ("status", "202"))): placed,
        ("http_request_duration_seconds_bucket",
         (("endpoint", "/api/v1/orders"), ("le", "+Inf"), ("status", "202"))): placed,
        ("http_requests_total", (("endpoint", "/api/v1/orders/<order_id>"), ("status", "404"))): 5,
        ("orders_created_total", ()): placed,
        ("orders_completed_total", ()): placed - 2,
        ("orders_failed_total", (("reason", "payment_declined"),)): 2,
        ("order_processing_duration_seconds_count", ()): placed,
        ("saga_step_retries_total", (("step", "capture_payment"),)): 2,
        ("saga_step_duration_seconds_count",
         (("outcome", "succeeded"), ("step", "reserve_inventory"))): placed,
        ("rq_workers", ()): 2,
        ("redis_up", ()): 1,
    }
    for samples in scrapes:
        assert {key: samples.get(key) for key in expected} == expected


def test_a_request_id_sent_with_an_order_is_on_every_worker_log_line_for_it(sqlite_app, tmp_path):
    client = sqlite_app.test_client()
    admin = admin_headers(sqlite_app, client)
    _, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, stock=5)
    settings = {**settings_of(sqlite_app), "LOG_LEVEL": "INFO"}
    with WorkerProcess(settings, tmp_path, name="logs") as worker:
        response = client.post("/api/v1/orders", json=order_body(token="tok_flaky"),
                               headers={**merchant, "X-Request-ID": "trace-order-4711"})
        order_id = response.get_json()["id"]
        assert response.headers["X-Request-ID"] == "trace-order-4711"
        wait_final(
            lambda o: client.get(f"/api/v1/orders/{o}", headers=merchant).get_json()["status"],
            [order_id],
        )
        time.sleep(0.5)
    lines = [json.loads(line) for line in worker.log_text().splitlines() if line.startswith("{")]
    about_order = [line for line in lines if order_id in json.dumps(line)]
    loggers = {line["logger"] for line in about_order}
    assert {"rq.worker", "worker.jobs"} <= loggers, loggers
    assert len(about_order) >= 4
    assert all(line.get("request_id") == "trace-order-4711" for line in about_order), about_order
    assert all(line.get("order_id") == order_id for line in about_order)


def test_a_plain_gunicorn_start_sets_up_its_own_multiprocess_directory(sqlite_app, tmp_path):
    settings = settings_of(sqlite_app)
    with GunicornServer(settings, tmp_path, workers=2) as server:  # no PROMETHEUS_MULTIPROC_DIR
        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(pool.map(
                lambda _: requests.get(server.url + "/api/v1/orders/ord_x", timeout=10).status_code,
                range(20),
            ))
        assert statuses == [401] * 20
        scrapes = [scrape_url(server.url) for _ in range(6)]
    directory = tmp_path / "instance" / "prometheus"
    assert str(directory) == settings["INSTANCE_PATH"] + "/prometheus"
    assert any(directory.glob("counter_*.db"))
    key = ("http_requests_total", (("endpoint", "/api/v1/orders/<order_id>"), ("status", "401")))
    assert [samples[key] for samples in scrapes] == [20] * 6
