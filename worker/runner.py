"""The RQ worker process: builds the app once, runs jobs in-process with an app context."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

import redis
from flask import current_app
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from sqlalchemy import event

from app.extensions import db
from app.factory import create_app, worker_identity
from app.infra.queue import ALL_QUEUES
from app.infra.queue_admin import PausableQueuesMixin
from app.observability import multiprocess
from app.observability.job_context import LogContextQueue, unbind_job
from config import exit_on_config_error

log = logging.getLogger(__name__)
# Well inside queue_admin.LOST_AFTER_SECONDS (30 s): a missed beat or two never looks like death.
BUSY_HEARTBEAT_SECONDS = 10


class AppWorker(PausableQueuesMixin, SimpleWorker):
    """A non-forking worker: no database connection is ever shared across a fork().

    Queues paused on the dashboard are skipped (PausableQueuesMixin). The app (and its connection
    pool) is built once per process; each job gets a fresh SQLAlchemy
    session, removed afterwards so a failed job never leaks a broken transaction into the next.
    """

    # Dequeued jobs bind their request id and order id to every log line until they finish.
    queue_class = LogContextQueue

    def validate_queues(self):
        """Plain rq.Queue objects are fine: only the dequeue class method is LogContextQueue's."""
        for queue in self.queues:
            if not isinstance(queue, Queue):
                raise TypeError(f"{queue} is not an rq Queue")

    def execute_job(self, job, queue):
        # Vault rotations reach workers too (checked every VAULT_REFRESH_SECONDS, between jobs).
        refresher = current_app.extensions.get("secret_refresher")
        if refresher is not None:
            refresher.maybe_refresh()
        beating = self._heartbeat_while_busy()
        try:
            return super().execute_job(job, queue)
        finally:
            beating.set()
            db.session.remove()
            unbind_job()

    def _heartbeat_while_busy(self) -> threading.Event:
        """A SimpleWorker runs its job in-process, so RQ heartbeats only between jobs; this thread
        keeps heartbeating while a job (a batch of sagas, a slow provider) runs. A busy worker is
        then alive exactly as long as it heartbeats: one SIGKILLed mid-job counts as lost after
        LOST_AFTER_SECONDS, not after its job's timeout on top (the NoWorkers alert, the
        dashboard). Set the returned event to stop it."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(BUSY_HEARTBEAT_SECONDS):
                try:
                    self.heartbeat()
                except redis.RedisError:
                    pass  # Redis away: the main loop finds out and waits for it

        threading.Thread(target=beat, name="rq-busy-heartbeat", daemon=True).start()
        return done


def asynchronous_commits(engine) -> None:
    """Worker transactions on PostgreSQL commit without waiting for the WAL flush.

    Safe because every saga write is replayable: a PostgreSQL crash can lose only the newest
    commits (WAL order: nothing later survives something earlier), and the saga resumes from the
    surviving step log with idempotent steps and provider idempotency keys. The outbox relay
    commits synchronously, which flushes the WAL up to it: an event is handed to webhooks only
    once it, and every change before it, is on disk. The API keeps synchronous commits: a 202
    means the order is durable.
    """
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
        dbapi_connection.commit()


def run_worker(queue_names: list[str], burst: bool = False, name: str | None = None) -> bool:
    # Metrics go to the directory gunicorn's /metrics reads (before prometheus_client loads).
    multiprocess.ensure_dir(multiprocess.default_dir())
    app = exit_on_config_error(create_app)
    with app.app_context():
        if app.config["WORKER_ASYNC_COMMIT"]:
            asynchronous_commits(db.engine)
        connection = app.extensions["redis"]
        prefix = app.config["QUEUE_PREFIX"]
        queues = [Queue(prefix + q, connection=connection) for q in queue_names]
        base_name = name or worker_identity().replace(":", "-")
        log.info("worker starting", extra={"queues": ",".join(queue_names), "burst": burst})
        worked, restarts = False, 0
        while True:
            worker = AppWorker(
                queues,
                connection=connection,
                # A restarted loop registers afresh: its old registration may still be in Redis
                # (its farewell could not be written while Redis was away).
                name=base_name if restarts == 0 else f"{base_name}-{restarts}",
                # A killed worker's registration expires quickly; sagas are recovered from the
                # database by the scheduler anyway (leases), independent of RQ's own cleanup.
                worker_ttl=30,
            )
            try:
                worked = worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"]) or worked
            except (StopRequested, SystemExit):
                return worked
            except redis.RedisError as error:  # raised outside RQ's own retry (start, teardown)
                log.warning("worker loop stopped: Redis unavailable", extra={"error": str(error)})
            if burst or _stop_was_requested(worker):
                return worked
            # RQ retries a lost Redis only while it waits for a job; anywhere else (a heartbeat,
            # a job's result, a suspension check) its loop quits. The process stays: it waits for
            # Redis and starts a fresh loop, so an outage never leaves the queues without workers.
            restarts += 1
            _stop_on_signals()  # RQ's handlers would write the shutdown to the absent Redis
            try:
                wait_for_redis(connection)
            except StopRequested:
                return worked
            log.warning("worker loop restarted", extra={"restarts": restarts})


def _stop_was_requested(worker: AppWorker) -> bool:
    # RQ marks a SIGTERM/SIGINT by its date; `_stop_requested` is set only when it lands mid-job
    # (an idle worker leaves work() through StopRequested, which work() swallows).
    return worker._stop_requested or worker._shutdown_requested_date is not None


def _stop_on_signals() -> None:
    def stop(_signum, _frame):
        raise StopRequested()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def wait_for_redis(connection, first_delay: float = 0.5, max_delay: float = 5.0) -> float:
    """Block until Redis answers a PING (backing off up to max_delay); the seconds waited."""
    started, delay, told = time.monotonic(), first_delay, False
    while True:
        try:
            connection.ping()
        except redis.RedisError as error:
            if not told:
                log.warning("waiting for Redis", extra={"error": str(error)})
                told = True
            time.sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        waited = time.monotonic() - started
        if told:
            log.info("Redis is back", extra={"waited_seconds": round(waited, 1)})
        return waited


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--queues", nargs="+", default=list(ALL_QUEUES))
    parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument("--name")
    args = parser.parse_args(argv)
    run_worker(args.queues, burst=args.burst, name=args.name)
