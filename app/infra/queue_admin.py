"""RQ introspection and control for the dashboard: depths, workers, failed jobs, pause/resume.

Pausing is ours, not RQ's: a Redis set of paused queue names that `PausableQueuesMixin` (mixed into
the worker) reads before every dequeue, so a paused queue keeps its jobs and no worker takes one.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from dataclasses import dataclass

from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry

PAUSED_KEY = "queues:paused"
# How often a worker re-reads the paused set while it waits for work.
PAUSE_CHECK_SECONDS = 2


def paused_key(prefix: str) -> str:
    return prefix + PAUSED_KEY


def paused_names(connection, prefix: str) -> set[str]:
    """Short names (without prefix) of the paused queues."""
    return {m.decode() for m in connection.smembers(paused_key(prefix))}


def set_paused(connection, prefix: str, name: str, paused: bool) -> None:
    if paused:
        connection.sadd(paused_key(prefix), name)
    else:
        connection.srem(paused_key(prefix), name)


@dataclass(frozen=True)
class FailedJob:
    id: str
    description: str
    error: str
    failed_at: dt.datetime | None
    args: tuple
    # Its state now when that is no longer "failed" (queued again by the saga recovery, say).
    status: str | None = None


# An idle worker heartbeats every few seconds (its short dequeue waits, PausableQueuesMixin), a
# busy one every 10 s from a thread (worker.runner.AppWorker); RQ keeps a dead worker's
# registration for worker_ttl + 60 s (90 s). One silent for longer than this is shown as lost,
# and not counted as serving its queues, long before that.
LOST_AFTER_SECONDS = 30


def heartbeat_is_stale(last_heartbeat: dt.datetime | None, now: dt.datetime) -> bool:
    if last_heartbeat is None:
        return True
    return (now - last_heartbeat).total_seconds() > LOST_AFTER_SECONDS


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    state: str  # RQ's (idle, busy, suspended...), or "lost" when its heartbeat stopped
    queues: list[str]
    current_job: str | None
    last_heartbeat: dt.datetime | None
    successful: int
    failed: int

    @property
    def lost(self) -> bool:
        return self.state == "lost"


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


# Lines of a traceback that never help on the page: SQLAlchemy's link, the statement and its
# parameters (customer data), and frames (file paths).
_NOISE = ("(Background on this error at:", "[SQL:", "[parameters:", "File \"")
ERROR_SUMMARY_CHARS = 300


def error_summary(text: str | None, limit: int = ERROR_SUMMARY_CHARS) -> str:
    """The exception type and message of a traceback (its last exception), without file paths.

    The last line of a traceback is often not the error: SQLAlchemy ends with a "Background on
    this error" link, and a message may run over several lines. So: the first unindented line
    after the last "Traceback" header, plus its indented continuation lines; text that is no
    traceback (RQ's own notes) is kept as it is. Truncated to `limit` characters.
    """
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent call")]
    if starts:
        rest = lines[starts[-1] + 1:]
        first = next((i for i, ln in enumerate(rest) if not ln[0].isspace()), len(rest))
        lines = rest[first:]
    kept = [ln.strip() for ln in lines if not ln.strip().startswith(_NOISE)]
    summary = " ".join(kept)
    if not summary:
        return "(no error recorded)"
    return summary if len(summary) <= limit else summary[: limit - 1].rstrip() + "…"


def _failure_of(job: Job) -> tuple[str, dt.datetime | None]:
    """The newest failure's traceback and time (the job itself may have been queued again)."""
    try:
        results = job.results()  # newest first
    except Exception:  # noqa: BLE001 - an unreadable result must not break the page
        results = []
    for result in results:
        if result.type == result.Type.FAILED:
            return result.exc_string or "", _aware(result.created_at)
    return "", None  # its results expired (RQ keeps them for the failure TTL)


class QueueAdmin:
    """Everything the dashboard needs from RQ, for the queues under one prefix."""

    def __init__(self, connection, prefix: str, names: tuple[str, ...]):
        self.connection = connection
        self.prefix = prefix
        self.names = names

    def queue(self, name: str) -> Queue:
        if name not in self.names:
            raise KeyError(name)
        return Queue(self.prefix + name, connection=self.connection)

    def depths(self) -> dict[str, int]:
        return {name: self.queue(name).count for name in self.names}

    def failed_counts(self) -> dict[str, int]:
        return {name: self._registry(name).count for name in self.names}

    def paused(self) -> set[str]:
        return paused_names(self.connection, self.prefix)

    def set_paused(self, name: str, paused: bool) -> None:
        self.queue(name)  # unknown names raise KeyError
        set_paused(self.connection, self.prefix, name, paused)

    def workers(self) -> list[WorkerInfo]:
        ours = {self.prefix + n for n in self.names}
        infos = []
        now = dt.datetime.now(dt.UTC)
        for worker in Worker.all(connection=self.connection):
            queue_names = [q.name for q in worker.queues]
            if not ours.intersection(queue_names):
                continue
            job = worker.get_current_job_id()
            heartbeat = _aware(worker.last_heartbeat)
            state = str(getattr(worker.get_state(), "value", worker.get_state()))
            infos.append(
                WorkerInfo(
                    name=worker.name,
                    state="lost" if heartbeat_is_stale(heartbeat, now) else state,
                    queues=[q.removeprefix(self.prefix) for q in queue_names],
                    current_job=job,
                    last_heartbeat=heartbeat,
                    successful=worker.successful_job_count,
                    failed=worker.failed_job_count,
                )
            )
        return sorted(infos, key=lambda w: w.name)

    def _registry(self, name: str) -> FailedJobRegistry:
        return FailedJobRegistry(queue=self.queue(name))

    def failed_jobs(self, name: str, limit: int = 50) -> list[FailedJob]:
        """The newest `limit` failed jobs of a queue, newest first."""
        registry = self._registry(name)
        # The registry's score is the failure second + the job's failure TTL: highest first is
        # newest first (to the second) while a queue's jobs share their TTL, as ours do; the page
        # is then sorted by the failure results' millisecond times.
        ids = registry.get_job_ids(0, limit - 1, desc=True)
        jobs = []
        for job in Job.fetch_many(ids, connection=self.connection):
            if job is None:
                continue
            exc_string, failed_at = _failure_of(job)
            status = str(getattr(job.get_status(refresh=False), "value", "") or "")
            jobs.append(
                FailedJob(
                    id=job.id,
                    description=job.description or job.func_name,
                    error=error_summary(exc_string),
                    # A job queued again under its id (the saga recovery does that) has lost
                    # ended_at; its failure result still has the time.
                    failed_at=failed_at or _aware(job.ended_at),
                    args=tuple(job.args or ()),
                    status=status if status and status != "failed" else None,
                )
            )
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(jobs, key=lambda j: j.failed_at or epoch, reverse=True)

    def failed_job_ids(self, name: str) -> list[str]:
        return self._registry(name).get_job_ids()

    def requeue(self, name: str, job_id: str) -> bool:
        registry = self._registry(name)
        if job_id not in registry.get_job_ids():
            return False
        registry.requeue(job_id)
        return True

    def delete(self, name: str, job_id: str) -> bool:
        registry = self._registry(name)
        if job_id not in registry.get_job_ids():
            return False
        try:
            Job.fetch(job_id, connection=self.connection).delete()
        except NoSuchJobError:
            registry.remove(job_id)
        return True


class PausableQueuesMixin:
    """Mixed into the RQ worker: never dequeue from a queue paused on the dashboard."""

    @property
    def pause_prefix(self) -> str:
        # The worker runs inside the app context; the queue prefix is the app's.
        from flask import current_app

        return current_app.config["QUEUE_PREFIX"]

    @contextmanager
    def _running_queues(self):
        every = self._ordered_queues
        prefix = self.pause_prefix
        paused = {prefix + n for n in paused_names(self.connection, prefix)}
        active = [q for q in every if q.name not in paused]
        self._ordered_queues = active
        try:
            yield active
        finally:
            # Keep RQ's round-robin order for the queues that were active.
            kept = [q for q in self._ordered_queues if q in every]
            self._ordered_queues = kept + [q for q in every if q not in kept]

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        if timeout is None or max_idle_time is not None:
            # Burst (or idle-limited) mode: one pass over the running queues.
            with self._running_queues() as active:
                if not active:
                    return None
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while not getattr(self, "_stop_requested", False):
            # Short waits, so a pause takes effect within PAUSE_CHECK_SECONDS.
            with self._running_queues() as active:
                if active:
                    result = super().dequeue_job_and_maintain_ttl(
                        PAUSE_CHECK_SECONDS, PAUSE_CHECK_SECONDS
                    )
                    if result is not None:
                        return result
                    continue
            self.heartbeat()
            time.sleep(PAUSE_CHECK_SECONDS)
        return None
