"""`python -m worker.scheduler`: periodic jobs, with exactly one effective instance.

Several schedulers may run (two hosts, a deploy overlap): each tick they compete for a short Redis
lease, and only the holder does the work, so nothing runs twice.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
import uuid

from app.factory import create_app
from app.services import backups, idempotency, outbox, slo, webhooks
from app.services.recovery import recover_stuck_sagas

log = logging.getLogger(__name__)
LEADER_KEY = "scheduler:leader"
PURGE_EVERY_SECONDS = 600

# Renew only if we still hold it; Lua makes check-and-extend one atomic step.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class Scheduler:
    def __init__(self, app, interval: float):
        self.app = app
        self.interval = interval
        self.identity = uuid.uuid4().hex
        self.redis = app.extensions["redis"]
        self.lease_ms = int(max(interval * 5, 10) * 1000)
        self.stopping = False
        self.key = app.config["QUEUE_PREFIX"] + LEADER_KEY

    def is_leader(self) -> bool:
        if self.redis.set(self.key, self.identity, nx=True, px=self.lease_ms):
            return True
        return bool(self.redis.eval(_RENEW, 1, self.key, self.identity, self.lease_ms))

    def tick(self) -> None:
        """One round of every periodic task (only on the leader)."""
        if not self.is_leader():
            return
        queue = self.app.extensions["job_queue"]
        with self.app.app_context():
            recovered = recover_stuck_sagas(queue, self.app.config["SAGA_STUCK_AFTER_SECONDS"])
            if recovered:
                log.info("re-queued stuck sagas", extra={"count": len(recovered)})
            # The outbox relay for events no saga job published (cancel requests, crashes).
            targets = dict.fromkeys(outbox.publish_pending_events())
            targets.update(dict.fromkeys(webhooks.due_targets()))
            if targets:
                queue.enqueue_webhook_deliveries(list(targets))
            backups.backup_if_due(self.redis)  # no-op unless BACKUP_INTERVAL_SECONDS > 0
            self.purge_idempotency_keys_if_due()
            slo.evaluate_and_store()  # SLIs, budgets and burn-rate alerts for /slo (every 10 s)

    def purge_idempotency_keys_if_due(self) -> None:
        """Delete Idempotency-Key records past their 24 h, at most once per PURGE_EVERY_SECONDS."""
        marker = self.app.config["QUEUE_PREFIX"] + "scheduler:idempotency-purge"
        if self.redis.set(marker, "1", nx=True, ex=PURGE_EVERY_SECONDS):
            purged = idempotency.purge_expired()
            if purged:
                log.info("purged expired idempotency keys", extra={"count": purged})

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        log.info("scheduler starting", extra={"interval": self.interval})
        while not self.stopping:
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a failed tick (Redis/DB blip) must not kill it
                log.exception("scheduler tick failed")
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker.scheduler")
    parser.add_argument("--once", action="store_true", help="run one tick and exit")
    args = parser.parse_args(argv)
    app = create_app()
    scheduler = Scheduler(app, app.config["SCHEDULER_INTERVAL_SECONDS"])
    if args.once:
        scheduler.tick()
    else:
        scheduler.run()


if __name__ == "__main__":
    main()
