"""What the operations pages say about failures and stalls: findings of the dashboard audit.

Failed jobs show their exception (newest first, counted), queues without a worker are not
"running", the newest failures are the ones that failed last, a final order's unrun steps say so,
and a date range that ends before it starts is refused with a message.
"""

from __future__ import annotations

import datetime as dt
import re

import psycopg
import sqlalchemy.exc

from tests.helpers import drain_queues
from tests.web.dashboard_support import place, shop, staff_client

REFUSED = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: refused'


def refuse_database(n: int) -> None:
    """A job that fails like a saga job during a database outage (run by the real worker)."""
    try:
        raise psycopg.OperationalError(REFUSED)
    except psycopg.OperationalError as exc:
        raise sqlalchemy.exc.OperationalError(None, None, exc) from exc


def _fail(app, queue: str, job_ids: list[str]) -> None:
    with app.app_context():
        rq_queue = app.extensions["job_queue"].queue(queue)
        for n, job_id in enumerate(job_ids):
            rq_queue.enqueue(f"{__name__}.refuse_database", n, job_id=job_id)
    drain_queues(app)


def test_failed_jobs_show_the_exception_newest_first_and_how_many_are_not_shown(sqlite_app):
    # Ids sort like their failure order: jobs failing within one second share a registry score.
    job_ids = [f"refused-{n:03d}" for n in range(51)]
    _fail(sqlite_app, "default", job_ids)
    viewer = staff_client(sqlite_app, "viewer")

    page = viewer.get("/queues").get_data(as_text=True)

    assert (
        "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: "
        "connection to server at &#34;127.0.0.1&#34;, port 5432 failed: refused"
    ) in page
    assert "Background on this error" not in page and 'File "' not in page
    assert "showing the newest 50 of 51" in page
    shown = re.findall(r"<code>(refused-\d+)</code>", page)
    assert shown == job_ids[:0:-1]  # newest first; the oldest one is left out


def test_a_failed_job_queued_again_keeps_its_failure_time_or_says_unknown(sqlite_app):
    from rq.results import Result

    queue = sqlite_app.extensions["job_queue"]
    job_id = queue.saga_job_id("ord_gone")
    _fail(sqlite_app, "sagas", [job_id])
    # The saga recovery queues the order's saga again under the same job id: RQ's new job has
    # no ended_at, but the failure result keeps the time.
    with sqlite_app.app_context():
        assert queue.enqueue_sagas(["ord_gone"]) == 1
    viewer = staff_client(sqlite_app, "viewer")

    page = viewer.get("/queues").get_data(as_text=True)
    row = page[page.index(f"<code>{job_id}</code>"):].split("</tr>")[0]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", row), row
    assert "queued again since · now queued" in row

    with sqlite_app.app_context():
        sqlite_app.extensions["redis"].delete(Result.get_key(job_id))
    row = viewer.get("/queues").get_data(as_text=True).split(f"<code>{job_id}</code>")[1]
    assert "unknown" in row.split("</tr>")[0]


def test_waiting_jobs_without_a_worker_raise_a_warning_instead_of_running_badges(sqlite_app):
    from rq import Worker

    from app.infra.queue import ALL_QUEUES, WEBHOOK_QUEUE

    api, _, headers = shop(sqlite_app)
    place(api, headers)  # its saga job waits: no worker runs in this test
    viewer = staff_client(sqlite_app, "viewer")

    for path in ("/", "/queues"):
        page = viewer.get(path).get_data(as_text=True)
        assert "No workers: 1 job waiting." in page, path
        assert ">running</span>" not in page and ">no worker</span>" in page, path

    with sqlite_app.app_context():
        connection = sqlite_app.extensions["redis"]
        queue = sqlite_app.extensions["job_queue"].queue  # the app's own (prefixed) queues
        webhooks_only = Worker([queue(WEBHOOK_QUEUE)], connection=connection, name="wh-only")
        everything = Worker([queue(q) for q in ALL_QUEUES], connection=connection, name="all")
        webhooks_only.register_birth()
        try:
            page = viewer.get("/queues").get_data(as_text=True)
            assert "No worker takes sagas: 1 job waiting." in page
            everything.register_birth()
            try:
                for path in ("/", "/queues"):
                    page = viewer.get(path).get_data(as_text=True)
                    assert "job waiting" not in page and ">no worker</span>" not in page, path
                    assert page.count(">running</span>") == len(ALL_QUEUES), path
                # Both stop heartbeating (SIGKILL, say): long before RQ drops them (90 s),
                # the pages call them lost and the queues unserved again.
                from rq.utils import utcformat

                silent = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=45)
                for worker in (webhooks_only, everything):
                    connection.hset(worker.key, "last_heartbeat", utcformat(silent))
                page = viewer.get("/queues").get_data(as_text=True)
                assert "No workers: 1 job waiting." in page
                assert page.count(">lost</span>") == 2
                shift = viewer.get("/").get_data(as_text=True)
                assert "0 worker(s) alive, <strong>2 lost</strong>" in shift
                assert "No workers: 1 job waiting." in shift
                # The metric behind the "no workers" alert agrees at once.
                scraped = viewer.get("/metrics").get_data(as_text=True)
                assert "\nrq_workers 0.0\n" in scraped
            finally:
                everything.register_death()
        finally:
            webhooks_only.register_death()


def test_newest_failures_are_ordered_by_when_they_failed(app):
    from sqlalchemy import update

    from app.extensions import db
    from app.infra.models import Order
    from app.infra.models.base import utcnow

    api, _, headers = shop(app)
    placed_first = place(api, headers, token="tok_chargeDeclined")
    placed_last = place(api, headers, token="tok_chargeDeclined")
    drain_queues(app)
    with app.app_context():
        # The order placed first failed last (its payment was retried for longer, say).
        now = utcnow()
        hour_ago = now - dt.timedelta(hours=1)
        for order_id, failed_at in ((placed_first, now), (placed_last, hour_ago)):
            db.session.execute(
                update(Order).where(Order.id == order_id).values(finished_at=failed_at)
            )
        db.session.commit()
    viewer = staff_client(app, "viewer")

    newest = viewer.get("/").get_data(as_text=True).split("Newest failures")[1]

    assert newest.index(placed_first) < newest.index(placed_last)


def test_a_failed_orders_steps_that_never_ran_say_not_run(sqlite_app):
    api, _, headers = shop(sqlite_app)
    declined = place(api, headers, token="tok_chargeDeclined")
    drain_queues(sqlite_app)
    viewer = staff_client(sqlite_app, "viewer")

    steps = viewer.get(f"/orders/{declined}").get_data(as_text=True).split("Saga steps")[1]
    steps = steps.split("</ol>")[0]

    for name in ("create_shipment", "complete"):
        assert re.search(rf'badge not-run">not run</span> <strong>{name}</strong>', steps), name
    assert ">pending</span>" not in steps and "0 attempt(s)" not in steps
    assert re.search(r'badge failed">failed</span> <strong>capture_payment</strong>', steps)


def test_a_date_range_that_ends_before_it_starts_is_refused_with_a_message(sqlite_app):
    viewer = staff_client(sqlite_app, "viewer")

    response = viewer.get("/orders?created_from=2026-11-20&created_to=2026-11-01")

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "To (UTC, inclusive): is before From (2026-11-20)" in page
    assert "From (UTC)" in page
    same_day = viewer.get("/orders?created_from=2026-11-20&created_to=2026-11-20")
    assert same_day.status_code == 200
