"""RQ queues: the only place that knows job names and queue names."""

from __future__ import annotations

import redis
from rq import Queue

SAGA_QUEUE = "sagas"
WEBHOOK_QUEUE = "webhooks"
DEFAULT_QUEUE = "default"
ALL_QUEUES = (SAGA_QUEUE, WEBHOOK_QUEUE, DEFAULT_QUEUE)

# Jobs are named by import path, so the app never imports the worker package.
RUN_ORDER_SAGA = "worker.jobs.run_order_saga"


class RqJobQueue:
    """JobQueue port on RQ; RQ 2+ needs the connection passed explicitly."""

    def __init__(self, connection: redis.Redis, prefix: str = "", job_timeout: int = 120):
        self.connection = connection
        self.prefix = prefix
        self.job_timeout = job_timeout

    def queue(self, name: str) -> Queue:
        return Queue(self.prefix + name, connection=self.connection)

    def enqueue_saga(self, order_id: str, *, request_id: str | None = None) -> None:
        """Queue the saga of a committed order (call only after the commit)."""
        self.queue(SAGA_QUEUE).enqueue(
            RUN_ORDER_SAGA,
            order_id,
            request_id=request_id,
            job_timeout=self.job_timeout,
            result_ttl=300,
            failure_ttl=7 * 24 * 3600,
            description=f"saga {order_id}",
        )
