"""Log context for RQ jobs: every log line of a job - RQ's own, the job's, the saga service's -
carries the request id of the API call that queued it, and the order id for saga jobs."""

from __future__ import annotations

from rq import Queue
from rq.job import Job

from app.infra.queue import RUN_ORDER_SAGA
from app.observability.logs import current_log_fields, current_request_id


def bind_job(job: Job) -> None:
    """Set the log context from the job: request_id (a job kwarg), order_id, job_id."""
    fields = {"job_id": job.id}
    try:
        kwargs, args, func_name = job.kwargs or {}, job.args or (), job.func_name
    except Exception:  # noqa: BLE001 - an undecodable job still runs (and fails) under RQ's rules
        kwargs, args, func_name = {}, (), None
    if func_name == RUN_ORDER_SAGA and args:
        fields["order_id"] = str(args[0])
    current_log_fields.set(fields)
    request_id = kwargs.get("request_id")
    current_request_id.set(request_id if isinstance(request_id, str) else None)


def unbind_job() -> None:
    """Clear the job's log context once it has finished."""
    current_log_fields.set(None)
    current_request_id.set(None)


class LogContextQueue(Queue):
    """Binds a job's log context the moment it is dequeued, before RQ logs that it starts it."""

    @classmethod
    def dequeue_any(cls, *args, **kwargs):
        result = super().dequeue_any(*args, **kwargs)
        if result is not None:
            bind_job(result[0])
        return result
