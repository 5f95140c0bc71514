"""Exactly one effective scheduler, even when a tick outlasts the leader lease.

Two schedulers run side by side (each in its own thread, as two processes would, against the same
Redis and database); the backup is made slow on purpose, longer than the lease.
"""

import threading
import time

import pytest

from app.services import backups, slo
from worker.scheduler import Scheduler

LEASE_SECONDS = 1.2
SLOW_BACKUP_SECONDS = 3.0


class Activity:
    """Who ran which periodic job when (thread name = scheduler)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.runs: list[tuple[str, str, float, float]] = []

    def record(self, job: str, seconds: float) -> None:
        started = time.monotonic()
        time.sleep(seconds)
        with self.lock:
            self.runs.append((threading.current_thread().name, job, started, time.monotonic()))

    def overlaps(self) -> list[tuple]:
        runs = sorted(self.runs, key=lambda run: run[2])
        return [
            (a, b)
            for i, a in enumerate(runs)
            for b in runs[i + 1 :]
            if a[0] != b[0] and b[2] < a[3]  # another scheduler started before this one ended
        ]


@pytest.fixture
def activity(monkeypatch):
    activity = Activity()
    monkeypatch.setattr(
        backups, "backup_if_due", lambda _redis: activity.record("backup", SLOW_BACKUP_SECONDS)
    )
    monkeypatch.setattr(slo, "evaluate_and_store", lambda: activity.record("slo", 0.0))
    return activity


def test_a_tick_longer_than_the_lease_never_runs_beside_another_scheduler(app, activity):
    schedulers = [Scheduler(app, interval=0.1, lease_seconds=LEASE_SECONDS) for _ in range(2)]
    threads = [
        threading.Thread(target=s.run, name=f"scheduler-{i}", daemon=True)
        for i, s in enumerate(schedulers)
    ]
    for thread in threads:
        thread.start()
    time.sleep(3 * SLOW_BACKUP_SECONDS + 1)
    for scheduler in schedulers:
        scheduler.stopping = True
    for thread in threads:
        thread.join(timeout=2 * SLOW_BACKUP_SECONDS)
        assert not thread.is_alive()

    backups_run = [run for run in activity.runs if run[1] == "backup"]
    assert len(backups_run) >= 2, activity.runs  # the work goes on
    assert activity.overlaps() == []
    # The leader kept the lease through each slow backup: its whole tick ran, SLO evaluation too.
    assert len([run for run in activity.runs if run[1] == "slo"]) >= len(backups_run) - 1
    # Stopped, the leader gave the lease up: the next scheduler need not wait for it to expire.
    assert app.extensions["redis"].get(schedulers[0].key) is None


def test_a_leader_that_lost_its_lease_mid_tick_stops_before_the_next_job(app, monkeypatch):
    scheduler = Scheduler(app, interval=1, lease_seconds=LEASE_SECONDS)
    redis = app.extensions["redis"]
    ran = []

    def backup_during_which_another_scheduler_takes_over(_redis):
        ran.append("backup")
        redis.set(scheduler.key, "another-scheduler", px=10_000)

    monkeypatch.setattr(backups, "backup_if_due", backup_during_which_another_scheduler_takes_over)
    monkeypatch.setattr(slo, "evaluate_and_store", lambda: ran.append("slo"))
    scheduler.tick()
    assert ran == ["backup"]
    assert redis.get(scheduler.key) == b"another-scheduler"
    scheduler.tick()  # not the leader any more: nothing runs
    assert ran == ["backup"]
