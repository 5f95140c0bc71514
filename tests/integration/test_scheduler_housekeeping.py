"""The scheduler's housekeeping: Idempotency-Key records are purged after their 24 hours, and the
data is reconciled (check-integrity) every RECONCILE_INTERVAL_SECONDS."""

import datetime as dt
import logging
import time

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from app.extensions import db
from app.infra.models import IdempotencyRecord, Product
from app.infra.models.base import utcnow
from worker.scheduler import RECONCILE_MARKER, Scheduler


def _record(key: str, expires_at: dt.datetime) -> IdempotencyRecord:
    return IdempotencyRecord(scope="merchant:m", key=key, method="POST", path="/api/v1/orders",
                             request_hash="h" * 64, state="completed", response_status=202,
                             response_body="{}", response_headers={}, expires_at=expires_at)


def test_a_scheduler_tick_purges_expired_idempotency_keys_and_keeps_live_ones(app):
    with app.app_context():
        db.session.add_all([_record("old", utcnow() - dt.timedelta(minutes=1)),
                            _record("live", utcnow() + dt.timedelta(hours=23))])
        db.session.commit()
    scheduler = Scheduler(app, interval=1)
    scheduler.tick()
    with app.app_context():
        keys = set(db.session.scalars(select(IdempotencyRecord.key)))
    assert keys == {"live"}
    # At most once per period: a second tick right away does not purge again.
    with app.app_context():
        db.session.add(_record("old-2", utcnow() - dt.timedelta(minutes=1)))
        db.session.commit()
    scheduler.tick()
    with app.app_context():
        assert set(db.session.scalars(select(IdempotencyRecord.key))) == {"live", "old-2"}


def _integrity_gauges(client) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("integrity_")
    }


def _product(app) -> str:
    from app.services import accounts, catalog

    with app.app_context():
        merchant = accounts.create_merchant("Reconciled Co")
        return catalog.create_product(merchant.id, sku="SKU-R", name="Thing", price=1000,
                                      currency="MYR", stock=10).id


def test_a_scheduler_tick_reconciles_logs_each_disagreement_and_exports_their_number(
    app, client, caplog
):
    product_id = _product(app)
    scheduler = Scheduler(app, interval=1)
    before = time.time()
    scheduler.tick()
    gauges = _integrity_gauges(client)
    assert gauges["integrity_discrepancies"] == 0
    assert before <= gauges["integrity_check_last_run_timestamp_seconds"] <= time.time()
    assert 0 <= gauges["integrity_check_duration_seconds"] < 5

    with app.app_context():  # units reserved for no order: stock and orders disagree
        db.session.execute(update(Product).values(reserved=Product.reserved + 3))
        db.session.commit()
    caplog.set_level(logging.WARNING, logger="worker.scheduler")
    scheduler.tick()  # within RECONCILE_INTERVAL_SECONDS of the last run: not again
    assert _integrity_gauges(client)["integrity_discrepancies"] == 0
    assert not [r for r in caplog.records if "integrity" in r.getMessage()]

    app.extensions["redis"].delete(app.config["QUEUE_PREFIX"] + RECONCILE_MARKER)  # time passes
    scheduler.tick()
    assert _integrity_gauges(client)["integrity_discrepancies"] == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"integrity disagreement: product {product_id} (SKU-R): reserved 3 but open "
        "reservations hold 0"
    ]


def test_reconciliation_is_off_with_an_interval_of_zero(make_app, sqlite_database_url):
    app = make_app(sqlite_database_url, RECONCILE_INTERVAL_SECONDS=0)
    Scheduler(app, interval=1).tick()
    assert _integrity_gauges(app.test_client()) == {}
