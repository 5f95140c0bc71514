"""`python -m worker.scheduler`: periodic jobs, with exactly one effective instance.

Several schedulers may run (two hosts, a deploy overlap): each tick they compete for a short Redis
lease, and only the holder does the work, so nothing runs twice. A tick may outlast the lease (a
backup takes minutes): while it runs, a heartbeat thread renews the lease every third of it, and
before each periodic job the leader confirms (and renews) it, so a scheduler that lost the lease
(paused, cut off from Redis) stops before its next job instead of running beside the new leader.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable

from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.factory import create_app
from app.observability.metrics import record_integrity_check
from app.services import backups, idempotency, outbox, slo, webhooks
from app.services.integrity import check_integrity
from app.services.recovery import recover_stuck_sagas
from config import exit_on_config_error

log = logging.getLogger(__name__)
LEADER_KEY = "scheduler:leader"
PURGE_EVERY_SECONDS = 600
RECONCILE_MARKER = "scheduler:reconcile"
# Disagreements logged per reconciliation; a systematic fault would otherwise flood the log.
RECONCILE_LOG_LIMIT = 50
# A tick longer than this stops renewing the lease (it is hung, not busy: the longest job, a
# backup, holds its own lock for at most as long), so another scheduler takes the work over.
MAX_TICK_SECONDS = 3600

# Renew only if we still hold it; Lua makes check-and-extend one atomic step.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
# Give it up only if it is still ours.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaseKeeper:
    """Renews the leader lease from a thread while a tick runs; knows whether it still holds."""

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self.lost = threading.Event()
        self.stopped = threading.Event()
        self.started = self.renewed_at = time.monotonic()
        self.thread = threading.Thread(target=self._beat, name="scheduler-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopped.set()
        self.thread.join()

    def renew(self) -> bool:
        """Extend the lease if it is still ours; False (and lost for good) when it is not."""
        if self.lost.is_set():
            return False
        try:
            renewed = self.scheduler.renew()
        except RedisError as error:
            # Unknown: still ours while the last renewal's lease runs; after that, lost. (No
            # traceback: during a Redis outage this is expected, and TickOutage tells the rest.)
            log.warning("scheduler could not renew its lease",
                        extra={"error": f"{type(error).__name__}: {error}"})
            if time.monotonic() - self.renewed_at >= self.scheduler.lease_seconds:
                self.lost.set()
            return not self.lost.is_set()
        if renewed:
            self.renewed_at = time.monotonic()
        else:
            self.lost.set()
        return renewed

    def _beat(self) -> None:
        while not self.stopped.wait(self.scheduler.lease_seconds / 3):
            if time.monotonic() - self.started > MAX_TICK_SECONDS:
                log.error(
                    "scheduler tick is hung; no longer renewing the lease",
                    extra={"seconds": round(time.monotonic() - self.started)},
                )
                return
            if not self.renew():
                log.warning("scheduler lost its lease during a tick")
                return


# Redis or the database away: expected during an outage, and the same every tick.
DEPENDENCY_ERRORS = (RedisError, OperationalError, PoolTimeoutError)


class TickOutage:
    """Logs a dependency outage once when it starts (no traceback) and once when it ends, instead
    of a traceback every tick; a different dependency failing is logged anew."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.since: float | None = None
        self.what: str | None = None
        self.failures = 0

    def failed(self, error: Exception) -> None:
        what = "Redis" if isinstance(error, RedisError) else "the database"
        self.failures += 1
        if what != self.what:
            log.error("scheduler ticks failing: %s is unavailable; retrying every tick", what,
                      extra={"error": type(error).__name__})
            self.what = what
            if self.since is None:
                self.since = self.clock()

    def succeeded(self) -> None:
        if self.since is None:
            return
        log.warning("scheduler ticks succeed again", extra={
            "after_seconds": round(self.clock() - self.since, 1), "failed_ticks": self.failures})
        self.since, self.what, self.failures = None, None, 0


class Scheduler:
    def __init__(self, app, interval: float, lease_seconds: float | None = None):
        self.app = app
        self.interval = interval
        self.identity = uuid.uuid4().hex
        self.redis = app.extensions["redis"]
        self.lease_seconds = lease_seconds or max(interval * 5, 10)
        self.lease_ms = int(self.lease_seconds * 1000)
        self.stopping = False
        self.key = app.config["QUEUE_PREFIX"] + LEADER_KEY
        self.leading: bool | None = None  # as of the last tick; None before the first

    def is_leader(self) -> bool:
        if self.redis.set(self.key, self.identity, nx=True, px=self.lease_ms):
            return True
        return self.renew()

    def renew(self) -> bool:
        """Extend our lease; False if another scheduler holds it (or nobody does)."""
        return bool(self.redis.eval(_RENEW, 1, self.key, self.identity, self.lease_ms))

    def release(self) -> None:
        """Give the lease up (stopping), so another scheduler takes over at its next tick."""
        try:
            self.redis.eval(_RELEASE, 1, self.key, self.identity)
        except RedisError:
            log.warning("scheduler could not release its lease; it expires on its own")
        else:
            if self.leading:
                log.info("scheduler stopped leading; another one takes over at its next tick")

    def _note_role(self, leading: bool) -> None:
        """Say when this scheduler starts or stops leading (and that it waits, once)."""
        if leading == self.leading:
            return
        if leading:
            log.info("scheduler leads: it runs the periodic jobs")
        else:
            log.info("scheduler on standby: another scheduler leads; taking over if it stops")
        self.leading = leading

    def jobs(self) -> list[tuple[str, Callable[[], object]]]:
        """The periodic jobs of one tick, in order."""
        return [
            ("stuck-saga recovery", self.recover_stuck_sagas),
            ("outbox and webhook retries", self.relay_events),
            ("backup", lambda: backups.backup_if_due(self.redis)),  # no-op unless configured
            ("idempotency purge", self.purge_idempotency_keys_if_due),
            ("SLO evaluation", slo.evaluate_and_store),  # SLIs, budgets, burn-rate alerts
            ("reconciliation", self.reconcile_if_due),  # check-integrity, every few minutes
        ]

    def tick(self) -> None:
        """One round of every periodic task (only on the leader, and only while it leads)."""
        leading = self.is_leader()
        self._note_role(leading)
        if not leading:
            return
        with LeaseKeeper(self) as lease, self.app.app_context():
            for name, job in self.jobs():
                if not lease.renew():
                    log.warning("scheduler lost its lease; stopping before %s", name)
                    return
                job()

    def recover_stuck_sagas(self) -> None:
        queue = self.app.extensions["job_queue"]
        recovered = recover_stuck_sagas(queue, self.app.config["SAGA_STUCK_AFTER_SECONDS"])
        if recovered:
            log.info("re-queued stuck sagas", extra={"count": len(recovered)})

    def relay_events(self) -> None:
        """The outbox relay for events no saga job published (cancel requests, crashes)."""
        targets = dict.fromkeys(outbox.publish_pending_events())
        targets.update(dict.fromkeys(webhooks.due_targets()))
        if targets:
            self.app.extensions["job_queue"].enqueue_webhook_deliveries(list(targets))

    def purge_idempotency_keys_if_due(self) -> None:
        """Delete Idempotency-Key records past their 24 h, at most once per PURGE_EVERY_SECONDS."""
        marker = self.app.config["QUEUE_PREFIX"] + "scheduler:idempotency-purge"
        if self.redis.set(marker, "1", nx=True, ex=PURGE_EVERY_SECONDS):
            purged = idempotency.purge_expired()
            if purged:
                log.info("purged expired idempotency keys", extra={"count": purged})

    def reconcile_if_due(self) -> list[str] | None:
        """Run check-integrity at most once per RECONCILE_INTERVAL_SECONDS (0 = never): log each
        disagreement, keep their number and the time for /metrics; the disagreements, or None."""
        every = int(self.app.config["RECONCILE_INTERVAL_SECONDS"])
        prefix = self.app.config["QUEUE_PREFIX"]
        if every <= 0 or not self.redis.set(prefix + RECONCILE_MARKER, "1", nx=True, ex=every):
            return None
        started = time.monotonic()
        problems = check_integrity()
        seconds = time.monotonic() - started
        for problem in problems[:RECONCILE_LOG_LIMIT]:
            log.warning("integrity disagreement: %s", problem)
        if len(problems) > RECONCILE_LOG_LIMIT:
            log.warning(
                "%d more integrity disagreements; `flask --app wsgi check-integrity` lists all",
                len(problems) - RECONCILE_LOG_LIMIT,
            )
        # Exported for three periods: if the check stops running, its last number fades away.
        record_integrity_check(self.redis, prefix, len(problems), seconds, max(3 * every, 60))
        log.info(
            "reconciliation finished",
            extra={"discrepancies": len(problems), "seconds": round(seconds, 3)},
        )
        return problems

    def run(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        log.info("scheduler starting", extra={"interval": self.interval})
        outage = TickOutage()
        while not self.stopping:
            started = time.monotonic()
            try:
                self.tick()
            except DEPENDENCY_ERRORS as error:
                outage.failed(error)
            except Exception:  # noqa: BLE001 - a failed tick must not kill the scheduler
                log.exception("scheduler tick failed")
            else:
                outage.succeeded()
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        self.release()



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker.scheduler")
    parser.add_argument("--once", action="store_true", help="run one tick and exit")
    args = parser.parse_args(argv)
    app = exit_on_config_error(create_app)
    scheduler = Scheduler(app, app.config["SCHEDULER_INTERVAL_SECONDS"])
    if args.once:
        scheduler.tick()
    else:
        scheduler.run()


if __name__ == "__main__":
    main()
