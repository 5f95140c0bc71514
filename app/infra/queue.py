"""RQ queues: the only place that knows job names and queue names."""

from __future__ import annotations

import re
from collections.abc import Iterable

import redis
from rq import Queue
from rq.job import Job, JobStatus

SAGA_QUEUE = "sagas"
WEBHOOK_QUEUE = "webhooks"
DEFAULT_QUEUE = "default"
ALL_QUEUES = (SAGA_QUEUE, WEBHOOK_QUEUE, DEFAULT_QUEUE)

# Jobs are named by import path, so the app never imports the worker package.
RUN_ORDER_SAGA = "worker.jobs.run_order_saga"
DELIVER_WEBHOOKS = "worker.jobs.deliver_webhooks"
NOOP = "worker.jobs.noop"

# A job still waiting in its queue needs no twin; one that started (maybe on a worker that was
# killed since) or ended does: re-enqueueing it under the same id replaces it.
_WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


_ADOPT_LUA = """
local ids = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local taken = {}
for _, id in ipairs(ids) do
  if string.sub(id, 1, string.len(ARGV[3])) ~= ARGV[3] then break end
  taken[#taken + 1] = id
end
if #taken > 0 then
  redis.call('LTRIM', KEYS[1], #taken, -1)
  for _, id in ipairs(taken) do redis.call('DEL', ARGV[2] .. id) end
end
return taken
"""


class RqJobQueue:
    """JobQueue port on RQ; RQ 2+ needs the connection passed explicitly."""

    def __init__(self, connection: redis.Redis, prefix: str = "", job_timeout: int = 120):
        self.connection = connection
        self.prefix = prefix
        # Job ids allow only letters, digits, "_" and "-"; a prefix like "bench:" is made one.
        self.job_id_prefix = re.sub(r"[^A-Za-z0-9_-]", "-", prefix)
        self.job_timeout = job_timeout
        self._adopt = connection.register_script(_ADOPT_LUA)

    def queue(self, name: str) -> Queue:
        return Queue(self.prefix + name, connection=self.connection)

    def enqueue_saga(self, order_id: str, *, request_id: str | None = None) -> None:
        """Queue the saga of a committed order (call only after the commit)."""
        # One pipeline: RQ alone sends its queue registration and the job in two round trips.
        pipe = self.connection.pipeline()
        self.queue(SAGA_QUEUE).enqueue(
            RUN_ORDER_SAGA,
            order_id,
            request_id=request_id,
            job_timeout=self.job_timeout,
            result_ttl=300,
            failure_ttl=7 * 24 * 3600,
            description=f"saga {order_id}",
            job_id=self.saga_job_id(order_id),
            pipeline=pipe,
        )
        pipe.execute()

    def saga_job_id(self, order_id: str) -> str:
        return f"{self.job_id_prefix}saga-{order_id}"

    def adopt_waiting_sagas(self, limit: int) -> list[str]:
        """Take up to `limit` saga jobs off the front of the saga queue; their order ids."""
        ids = self._adopt(
            keys=[self.queue(SAGA_QUEUE).key],
            args=[limit, Job.redis_job_namespace_prefix, self.saga_job_id("")],
        )
        prefix = len(self.saga_job_id(""))
        return [job_id.decode()[prefix:] for job_id in ids]

    def _waiting(self, job_ids: list[str]) -> set[str]:
        jobs = Job.fetch_many(job_ids, connection=self.connection) if job_ids else []
        waiting = set()
        for job_id, job in zip(job_ids, jobs, strict=True):
            if job is not None and job.get_status(refresh=False) in _WAITING:
                waiting.add(job_id)
        return waiting

    def _enqueue_deduped(
        self, queue_name: str, function: str, calls: Iterable[tuple[str, tuple, str]]
    ) -> int:
        """enqueue_many, one pipeline, skipping jobs whose id is already waiting in a queue."""
        # One call per job id: enqueue_many refuses a batch naming an id twice (a saga taken
        # twice off the queue, say, when a cancel queued it again while it waited).
        calls = list({job_id: (job_id, args, text) for job_id, args, text in calls}.values())
        waiting = self._waiting([job_id for job_id, _, _ in calls])
        queue = self.queue(queue_name)
        batch = [
            Queue.prepare_data(
                function,
                args=args,
                job_id=job_id,
                timeout=self.job_timeout,
                result_ttl=60,
                failure_ttl=7 * 24 * 3600,
                description=description,
            )
            for job_id, args, description in calls
            if job_id not in waiting
        ]
        if batch:
            queue.enqueue_many(batch)
        return len(batch)

    def enqueue_sagas(self, order_ids: Iterable[str]) -> int:
        """Re-drive many sagas in one round trip; an order already waiting is not queued twice."""
        return self._enqueue_deduped(
            SAGA_QUEUE,
            RUN_ORDER_SAGA,
            ((self.saga_job_id(oid), (oid,), f"saga {oid} (recovery)") for oid in order_ids),
        )

    def enqueue_webhook_deliveries(self, targets: Iterable[tuple[str, str]]) -> int:
        """Queue delivery of the pending events of each (webhook, order), in order."""
        return self._enqueue_deduped(
            WEBHOOK_QUEUE,
            DELIVER_WEBHOOKS,
            (
                (
                    f"{self.job_id_prefix}wh-{webhook_id}-{order_id}",
                    (webhook_id, order_id),
                    "webhooks",
                )
                for webhook_id, order_id in targets
            ),
        )
