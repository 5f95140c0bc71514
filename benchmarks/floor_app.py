"""The floor of an order creation under the mandated stack: the bare INSERT plus the parts the
contract and the design card make every creation pay, and nothing else.

    POST /floor/enqueue   one raw INSERT + one RQ enqueue (the saga's job, `connection=` given)
    POST /floor/limited   the same + one Redis script counting the rate limit, X-RateLimit-*

Run by `bench_api --api-floor` next to the bare app and the real API, under the same gunicorn
settings: how much of the bare rate is left once a creation queues its job and counts its
request, before any authentication, validation, pricing or multi-row write.
"""

from __future__ import annotations

import os

import redis
from flask import Flask, request
from rq import Queue

# The bare app's own insert, on its own per-thread connection.
from benchmarks.bare_app import INSERT, connection

app = Flask(__name__)
_redis = redis.Redis.from_url(os.environ["FLOOR_REDIS_URL"])
_queue = Queue("floor", connection=_redis)
# The product's own fixed-window count (app/auth/rate_limits.py): INCR, EXPIRE on first hit, TTL.
_count = _redis.register_script(
    """
local current = redis.call("incrby", KEYS[1], 1)
if tonumber(current) == 1 then redis.call("expire", KEYS[1], ARGV[1]) end
return {current, redis.call("ttl", KEYS[1])}
"""
)
LIMIT = 10**9


def _insert_and_enqueue() -> int:
    row_id = connection().execute(INSERT, (request.get_data(as_text=True),)).fetchone()[0]
    _queue.enqueue("worker.jobs.noop", row_id)
    return row_id


@app.post("/floor/enqueue")
def insert_and_enqueue():
    return {"id": _insert_and_enqueue()}, 201


@app.post("/floor/limited")
def counted_insert_and_enqueue():
    used, ttl = _count(keys=["floor:window"], args=[60])
    headers = {"X-RateLimit-Limit": str(LIMIT), "X-RateLimit-Remaining": str(LIMIT - used),
               "X-RateLimit-Reset": str(ttl)}
    return {"id": _insert_and_enqueue()}, 201, headers
