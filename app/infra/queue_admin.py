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


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    state: str
    queues: list[str]
    current_job: str | None
    last_heartbeat: dt.datetime | None
    successful: int
    failed: int


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _error_of(job: Job) -> str:
    try:
        result = job.latest_result()
        if result is not None and result.exc_string:
            text = result.exc_string
        else:
            text = job.exc_info or ""
    except Exception:  # noqa: BLE001 - an unreadable result must not break the page
        text = job.exc_info or ""
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no error recorded)"


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
        for worker in Worker.all(connection=self.connection):
            queue_names = [q.name for q in worker.queues]
            if not ours.intersection(queue_names):
                continue
            job = worker.get_current_job_id()
            infos.append(
                WorkerInfo(
                    name=worker.name,
                    state=str(getattr(worker.get_state(), "value", worker.get_state())),
                    queues=[q.removeprefix(self.prefix) for q in queue_names],
                    current_job=job,
                    last_heartbeat=_aware(worker.last_heartbeat),
                    successful=worker.successful_job_count,
                    failed=worker.failed_job_count,
                )
            )
        return sorted(infos, key=lambda w: w.name)

    def _registry(self, name: str) -> FailedJobRegistry:
        return FailedJobRegistry(queue=self.queue(name))

    def failed_jobs(self, name: str, limit: int = 50) -> list[FailedJob]:
        registry = self._registry(name)
        ids = registry.get_job_ids(0, limit - 1)
        jobs = []
        for job in Job.fetch_many(ids, connection=self.connection):
            if job is None:
                continue
            jobs.append(
                FailedJob(
                    id=job.id,
                    description=job.description or job.func_name,
                    error=_error_of(job),
                    failed_at=_aware(job.ended_at),
                    args=tuple(job.args or ()),
                )
            )
        return jobs

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
