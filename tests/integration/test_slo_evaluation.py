"""SLO counts in Redis buckets, the order SLI from real sagas, the scheduler's evaluation, /slo."""

import datetime as dt
import time

from sqlalchemy import update

from app.domain.slo import API_AVAILABILITY, API_LATENCY, ORDER_LATENCY, Counts
from app.observability.slo_buckets import SloBuckets
from tests.helpers import (
    admin_headers,
    create_product,
    create_user,
    drain_queues,
    merchant_with_key,
    order_body,
    web_login,
)

NOW = 1_800_000_000.0  # a fixed instant, so window edges are hand-computable


def test_buckets_count_each_event_in_every_window_that_covers_it(sqlite_app):
    buckets = SloBuckets(sqlite_app.extensions["redis"], prefix="t:")
    slug = API_AVAILABILITY.slug
    buckets.record([(slug, True)], at=NOW - 120)  # 2 min ago: every window
    buckets.record([(slug, False)], at=NOW - 20 * 60)  # 20 min ago: from 30m up
    buckets.record([(slug, False)], at=NOW - 2 * 3600)  # 2 h ago: from 6h up
    buckets.record([(slug, True)], at=NOW - 2 * 86400)  # 2 days ago: 3d and 30d
    buckets.record([(slug, True)], at=NOW - 40 * 86400)  # expired from every window
    by_window = buckets.counts([slug], now=NOW)[slug]
    assert by_window["5m"] == Counts(1, 1)
    assert by_window["30m"] == Counts(2, 1)
    assert by_window["1h"] == Counts(2, 1)
    assert by_window["6h"] == Counts(3, 1)
    assert by_window["24h"] == Counts(3, 1)
    assert by_window["3d"] == Counts(4, 2)
    assert by_window["30d"] == Counts(4, 2)


def test_api_requests_feed_the_availability_and_latency_buckets(make_app, sqlite_database_url):
    app = make_app(sqlite_database_url)

    @app.get("/api/v1/test-boom")
    def boom():
        raise RuntimeError("injected")

    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/v1/orders").status_code == 401
    assert client.get("/api/v1/test-boom").status_code == 500
    assert client.get("/healthz").status_code == 200  # not an API request: not counted
    counts = app.extensions["slo_buckets"].counts([API_AVAILABILITY.slug, API_LATENCY.slug])
    assert counts[API_AVAILABILITY.slug]["5m"] == Counts(total=4, bad=1)
    assert counts[API_LATENCY.slug]["5m"].total == 4


def place(app, client, **body):
    admin = admin_headers(app, client)
    _, merchant = merchant_with_key(client, admin)
    create_product(client, merchant, stock=5)
    response = client.post("/api/v1/orders", json=order_body(**body), headers=merchant)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def test_a_finished_order_counts_once_and_an_unfinished_late_one_counts_as_missed(app):
    from app.extensions import db
    from app.infra.models import Order
    from app.infra.models.base import utcnow
    from app.services import slo

    client = app.test_client()
    finished = place(app, client)
    drain_queues(app)
    with app.app_context():
        assert slo.record_order_outcome(finished, "completed") is False  # the worker counted it
    late = place(app, client)
    with app.app_context():
        db.session.execute(
            update(Order)
            .where(Order.id == late)
            .values(created_at=utcnow() - dt.timedelta(minutes=10))
        )
        db.session.commit()
        evaluation = {e.objective.slug: e for e in slo.evaluate_slos()}[ORDER_LATENCY.slug]
    assert evaluation.counts["5m"] == Counts(total=1, bad=0)  # the late one is 10 min old
    assert evaluation.counts["1h"] == Counts(total=2, bad=1)
    assert evaluation.sli["1h"] == 0.5


def test_the_scheduler_tick_stores_the_evaluation_and_slo_shows_firing_alerts(sqlite_app):
    from worker.scheduler import Scheduler

    buckets = sqlite_app.extensions["slo_buckets"]
    # 100 API requests in the last minutes, 10 of them 5xx: 100x the 0.1% budget.
    buckets.record([(API_AVAILABILITY.slug, True)] * 10 + [(API_AVAILABILITY.slug, False)] * 90)
    Scheduler(sqlite_app, interval=1).tick()
    create_user(sqlite_app, "viewer1", "viewer")
    client = sqlite_app.test_client()
    assert client.get("/slo").status_code in (302, 401)  # login first
    web_login(client, "viewer1")
    page = client.get("/slo").get_data(as_text=True)
    assert "ApiHighErrorRateFastBurn" in page
    assert 'href="/runbooks/high-error-rate"' in page
    assert "90.000%" in page  # the 1 h SLI
    with sqlite_app.test_request_context():
        from app.services import slo

        overview = slo.slo_overview()
        firing = slo.firing_alerts(overview)
    assert overview["evaluated_at"].timestamp() > time.time() - 60
    assert {a["name"] for a in firing} == {
        "ApiHighErrorRateFastBurn", "ApiHighErrorRateMediumBurn", "ApiHighErrorRateSlowBurn"
    }
    assert firing[0]["severity"] == "page"


def test_slo_page_says_unavailable_when_redis_is_down(make_app, sqlite_database_url):
    app = make_app(sqlite_database_url, REDIS_URL="redis://127.0.0.1:1/0")
    with app.test_request_context():
        from app.services import slo

        assert slo.slo_overview() == {"available": False, "evaluated_at": None, "objectives": []}
        assert slo.firing_alerts() == []


def test_firing_alerts_are_logged_when_they_change_not_on_every_tick(sqlite_app, caplog):
    from app.services import slo

    buckets = sqlite_app.extensions["slo_buckets"]
    buckets.record([(API_AVAILABILITY.slug, True)] * 10 + [(API_AVAILABILITY.slug, False)] * 90)

    def tick() -> list[str]:
        caplog.clear()
        with sqlite_app.app_context():
            slo.evaluate_and_store(min_interval=0)
        return [r.getMessage() for r in caplog.records if r.name == "app.services.slo"]

    with caplog.at_level("INFO", logger="app.services.slo"):
        assert tick() == ["SLO burn-rate alerts firing"]
        assert tick() == []  # the same alerts still firing: nothing new to say
        # 100,000 good requests bring the error rate under every alert's threshold.
        buckets.record([(API_AVAILABILITY.slug, False)] * 100_000)  # (slug, is_bad)
        assert tick() == ["SLO burn-rate alerts resolved"]
        assert tick() == []
