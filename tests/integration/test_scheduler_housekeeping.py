"""The scheduler's housekeeping: Idempotency-Key records are purged after their 24 hours."""

import datetime as dt

from sqlalchemy import select

from app.extensions import db
from app.infra.models import IdempotencyRecord
from app.infra.models.base import utcnow
from worker.scheduler import Scheduler


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
