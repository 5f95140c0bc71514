"""Runbooks for incidents: stuck sagas, a provider down, backlogs, Redis down, SLO burn alerts,
and the reconciliation finding data that disagrees.

Slugs are a contract: the Prometheus alert rules and the /slo page link to /runbooks/<slug>.
"""

from __future__ import annotations

from app.domain.runbooks import StepSpec
from app.services.runbooks import RunbookSpec

FLASK = "flask --app wsgi"

STUCK_SAGAS = RunbookSpec(
    slug="stuck-sagas",
    title="Stuck sagas: orders not reaching a final state",
    summary=(
        "**Symptoms:** orders stay `pending` or `processing` for minutes; the alert "
        "*StuckSagas* fires; the shift view shows a growing *processing* count while throughput "
        "drops.\n\n"
        "The scheduler re-drives every saga whose order has not progressed for "
        "`SAGA_STUCK_AFTER_SECONDS` (15 s by default), so sagas stuck for longer mean the "
        "scheduler, the workers or a dependency (provider, Redis, database) is not doing its part."
    ),
    steps=[
        StepSpec(
            "See how many orders are stuck and since when",
            "Sort by age: a few old ones point at single orders, hundreds at a component.",
            link_path="/orders?status=processing", link_label="Processing orders",
        ),
        StepSpec(
            "Check that workers are alive and the saga queue is draining",
            "Every worker should show a heartbeat younger than 30 s (older: shown as lost). "
            "No workers: start them "
            "(`worker` process type in the Procfile).",
            command=".venv/bin/python -m worker --name worker-recovery",
            link_path="/queues", link_label="Queues and workers",
        ),
        StepSpec(
            "Check that the payment hold is not on",
            "With the `payment_hold` kill switch on, sagas wait before capture on purpose. "
            "If the provider incident is over, switch it off; held orders continue within seconds.",
            link_path="/flags", link_label="Feature flags",
        ),
        StepSpec(
            "Check the scheduler is running (exactly one effective instance)",
            "The leader logs `re-queued stuck sagas` (with a count) whenever it re-queues any; "
            "`python -m worker.scheduler` logs whether it leads or waits. If none runs, start "
            "one.",
            command=".venv/bin/python -m worker.scheduler",
        ),
        StepSpec(
            "Open one stuck order and read its timeline",
            "The last saga step attempt and its error say where it hangs (a provider timeout, "
            "a lease held by a dead worker). Retry the saga from the order page with a reason.",
            link_path="/orders?status=processing", link_label="Pick an order",
        ),
        StepSpec(
            "Reconcile once the backlog is gone",
            "Must exit 0. Anything it lists (stock, payments, refunds) goes into the incident "
            "notes.",
            command=f"{FLASK} check-integrity",
        ),
    ],
)

PAYMENT_PROVIDER_DOWN = RunbookSpec(
    slug="payment-provider-down",
    title="Payment provider down (circuit breaker open)",
    summary=(
        "**Symptoms:** the payment circuit breaker is *open*; orders fail or retry at "
        "`capture_payment`; `saga_step_retries_total{step=\"capture_payment\"}` climbs.\n\n"
        "The breaker opens after `CIRCUIT_BREAKER_FAILURE_THRESHOLD` failures in "
        "`CIRCUIT_BREAKER_WINDOW_SECONDS` and probes again after the cooldown. Goal: no order "
        "fails because of the outage - hold them, then let them finish."
    ),
    steps=[
        StepSpec(
            "Confirm the breaker state and the error rate",
            "The shift view and /slo show the breaker and the order success SLI.",
            link_path="/slo", link_label="SLOs",
        ),
        StepSpec(
            "Hold sagas before the payment step",
            "Switch on the `payment_hold` kill switch with a reason naming the incident. Sagas "
            "wait before `capture_payment` instead of failing.",
            link_path="/flags", link_label="Feature flags",
        ),
        StepSpec(
            "Tell merchants, and decide about new orders",
            "Orders are still accepted and wait. If the outage will be long, switch on "
            "`orders_kill_switch`: the API answers 503 with `Retry-After` instead.",
            link_path="/flags", link_label="Feature flags",
        ),
        StepSpec(
            "Watch the provider recover",
            "When the breaker goes half-open and probes succeed, the provider is back.",
            link_path="/slo", link_label="SLOs",
        ),
        StepSpec(
            "Release the hold and watch the backlog drain",
            "Switch `payment_hold` off; held sagas are queued at once.",
            link_path="/queues", link_label="Queues",
        ),
        StepSpec(
            "Retry the orders that failed before the hold",
            "Filter failed orders by reason `payment_error`; retry each saga with a reason.",
            link_path="/orders?status=failed", link_label="Failed orders",
        ),
        StepSpec(
            "Check nobody was charged twice",
            "Must exit 0.",
            command=f"{FLASK} check-integrity",
        ),
    ],
)

QUEUE_BACKLOG = RunbookSpec(
    slug="queue-backlog",
    title="Queue backlog: jobs waiting faster than workers take them",
    summary=(
        "**Symptoms:** queue depth grows on /queues and the shift view; order processing "
        "p95 rises; alert *QueueBacklog*.\n\nEither too few workers, slow jobs (a slow provider), "
        "or a burst of orders."
    ),
    steps=[
        StepSpec(
            "Look at depth per queue and the workers",
            "Which queue (sagas, webhooks, default)? How many workers, are they busy or idle?",
            link_path="/queues", link_label="Queues and workers",
        ),
        StepSpec(
            "Idle workers with a full queue: check the queue is not paused",
            "A paused queue shows a banner on /queues; resume it (operator+, with a reason).",
            link_path="/queues", link_label="Queues",
        ),
        StepSpec(
            "Busy workers: find what makes jobs slow",
            "Step durations on an order timeline and the `saga_step_duration_seconds` p95 show "
            "whether a provider is slow. If so, follow the provider runbook.",
            link_path="/runbooks/payment-provider-down", link_label="Payment provider down",
        ),
        StepSpec(
            "Add workers",
            "Start more worker processes (on more hosts if CPU is the limit). They need only "
            "the database and Redis URLs.",
            command=".venv/bin/python -m worker --name worker-extra-1",
        ),
        StepSpec(
            "Failed jobs: read the error, requeue or delete",
            "Requeue after the cause is fixed; jobs are idempotent, so requeueing is safe.",
            link_path="/queues", link_label="Failed jobs",
        ),
        StepSpec(
            "If the burst continues, shed load",
            "As a last resort the `orders_kill_switch` makes the API answer 503 with Retry-After.",
            link_path="/flags", link_label="Feature flags",
        ),
    ],
)

REDIS_DOWN = RunbookSpec(
    slug="redis-down",
    title="Redis down or restarted empty",
    summary=(
        "**Symptoms:** `/readyz` answers 503 naming redis; workers log connection errors; "
        "the dashboard cannot show queues.\n\nRedis holds queues, rate limits, cache and flag "
        "fan-out - not the orders. The database is the source of truth: after Redis returns, the "
        "scheduler re-drives every unfinished saga, so no order is lost even if Redis comes "
        "back empty."
    ),
    steps=[
        StepSpec(
            "Confirm with the readiness probe",
            "503 with `redis` in the body; `/healthz` stays 200.",
            command="curl -s http://127.0.0.1:8000/readyz",
        ),
        StepSpec(
            "Check the Redis server",
            "Is it running, out of memory (`used_memory` vs `maxmemory`), refusing connections?",
            command="redis-cli -u \"$ORDERPROCESSING_REDIS_URL\" info memory",
        ),
        StepSpec(
            "Restart Redis (or fail over to the replica)",
            "An empty Redis is acceptable: queued jobs are rebuilt from the database.",
            command="sudo systemctl restart redis-server",
        ),
        StepSpec(
            "Watch readiness and workers come back",
            "`/readyz` turns 200 within 5 s; workers reconnect and show heartbeats.",
            link_path="/queues", link_label="Queues and workers",
        ),
        StepSpec(
            "Let the scheduler re-drive in-flight sagas",
            "Processing orders should drain within a minute. If not, follow the stuck sagas "
            "runbook.",
            link_path="/orders?status=processing", link_label="Processing orders",
        ),
        StepSpec("Reconcile", "Must exit 0.", command=f"{FLASK} check-integrity"),
    ],
)

HIGH_ERROR_RATE = RunbookSpec(
    slug="high-error-rate",
    title="High API error rate (availability SLO burning)",
    summary=(
        "**Alert:** the *99.9% of `/api/v1` requests are not 5xx* objective burns its error "
        "budget too fast (14.4x over 1 h and 5 m pages; 6x over 6 h and 30 m too).\n\n"
        "5xx come from the app failing, never from bad input (that is 4xx)."
    ),
    steps=[
        StepSpec(
            "See which objective and windows burn",
            "Fast burn (1 h) means act now; slow burn (6 h / 3 d) means find the cause today.",
            link_path="/slo", link_label="SLOs",
        ),
        StepSpec(
            "Check readiness: database and Redis",
            "A 503 naming a dependency points at its runbook.",
            command="curl -s http://127.0.0.1:8000/readyz",
            link_path="/runbooks/redis-down", link_label="Redis down",
        ),
        StepSpec(
            "Find the failing endpoint and the error",
            "`http_requests_total{status=~\"5..\"}` by endpoint; the JSON logs carry the request "
            "id that the client got in its problem+json response.",
            command="grep '\"status\": 5' /var/log/orderprocessing/web.log | tail -n 20",
        ),
        StepSpec(
            "Was there a deploy? Roll it back",
            "Recent changes are in the audit log (flags) and the deploy history.",
            link_path="/runbooks/deploy-and-rollback", link_label="Deploy and roll back",
        ),
        StepSpec(
            "Shed load if the system is overwhelmed",
            "The `orders_kill_switch` answers 503 with Retry-After deliberately and cheaply.",
            link_path="/flags", link_label="Feature flags",
        ),
    ],
)

SLOW_API = RunbookSpec(
    slug="slow-api",
    title="Slow API (latency SLO burning)",
    summary=(
        "**Alert:** fewer than 99% of `/api/v1` requests answer within 300 ms over the burn "
        "windows.\n\nUsually the database (a missing index, lock waits, an exhausted pool) or "
        "CPU saturation of the web processes."
    ),
    steps=[
        StepSpec(
            "See how fast the budget burns",
            "", link_path="/slo", link_label="SLOs",
        ),
        StepSpec(
            "Find the slow endpoint",
            "`http_request_duration_seconds` by endpoint: list, get or create?",
        ),
        StepSpec(
            "Check the database for slow queries and lock waits",
            "Look for sequential scans over `orders` and for long lock waits.",
            command=(
                "psql \"$ORDERPROCESSING_DATABASE_URL\" -c \"SELECT pid, now() - query_start AS "
                "age, wait_event, left(query, 80) FROM pg_stat_activity WHERE state <> 'idle' "
                "ORDER BY age DESC LIMIT 10\""
            ),
        ),
        StepSpec(
            "Check web process saturation",
            "All gunicorn workers busy means requests queue: add workers or hosts "
            "(`WEB_CONCURRENCY`).",
        ),
        StepSpec(
            "Check the payment and shipping simulators' latency knobs",
            "A chaos drill may have left latency on; it is audited.",
            link_path="/audit", link_label="Audit log",
        ),
    ],
)

SLOW_ORDER_PROCESSING = RunbookSpec(
    slug="slow-order-processing",
    title="Slow order processing (orders not final within 5 s)",
    summary=(
        "**Alert:** fewer than 99% of orders reach a final state within 5 s of being accepted, "
        "over the burn windows.\n\nThe saga is slow: a queue backlog, a slow or failing provider "
        "(retries with backoff), or stuck sagas."
    ),
    steps=[
        StepSpec(
            "See the p95 processing time and the burn rate",
            "", link_path="/", link_label="Shift view",
        ),
        StepSpec(
            "Is there a backlog?",
            "Deep saga queue: follow the queue backlog runbook.",
            link_path="/runbooks/queue-backlog", link_label="Queue backlog",
        ),
        StepSpec(
            "Is a provider slow or failing?",
            "Retries at `capture_payment` or `create_shipment` on order timelines; breaker state.",
            link_path="/runbooks/payment-provider-down", link_label="Payment provider down",
        ),
        StepSpec(
            "Are sagas stuck?",
            "Old orders in processing: follow the stuck sagas runbook.",
            link_path="/runbooks/stuck-sagas", link_label="Stuck sagas",
        ),
        StepSpec(
            "Is the payment hold on?",
            "Held orders wait on purpose and count against this objective.",
            link_path="/flags", link_label="Feature flags",
        ),
    ],
)


INTEGRITY_DISCREPANCIES = RunbookSpec(
    slug="integrity-discrepancies",
    title="Integrity discrepancies: stock, orders, payments or refunds disagree",
    summary=(
        "**Symptoms:** the alert *IntegrityDiscrepancies* fires; the scheduler's reconciliation "
        "(`check-integrity` every `RECONCILE_INTERVAL_SECONDS`) logs `integrity disagreement` "
        "warnings.\n\n"
        "Each line names what disagrees: a product's reserved units against its open "
        "reservations, a final order with a step left undone or uncompensated, a charge without "
        "its refund, or two charges. Most come from sagas that stopped half-way and clear once "
        "they are re-driven; the rest need a person, and never a re-run of a finished saga."
    ),
    steps=[
        StepSpec(
            "List the disagreements",
            "Exit 1 and one line per disagreement; note the order ids and SKUs in the incident.",
            command=f"{FLASK} check-integrity",
        ),
        StepSpec(
            "Let sagas in flight finish",
            "Lines about orders still pending or processing are usually sagas mid-way: wait one "
            "scheduler pass (stuck sagas are re-driven after 15 s) or follow the stuck sagas "
            "runbook, then list again.",
            link_path="/runbooks/stuck-sagas", link_label="Stuck sagas",
        ),
        StepSpec(
            "Look for a restore or a hand edit",
            "A restore from an older backup, or rows changed by hand, leaves the provider ledger "
            "and the orders out of step: filter the audit log by `database.restore`.",
            link_path="/audit?action=database.restore", link_label="Restores in the audit log",
        ),
        StepSpec(
            "Settle money by hand, never by re-running a saga",
            "A failed or cancelled order charged without a refund, or charged twice: refund the "
            "extra charge at the payment provider with the order id as reference, and write "
            "what you did in the incident's postmortem.",
            link_path="/orders?status=failed", link_label="Failed orders",
        ),
        StepSpec(
            "Correct stock only once no saga is open for the product",
            "`reserved` is the sum of open reservations; if it still disagrees with every saga "
            "final, set the on-hand count with `PATCH /api/v1/products/{sku}` (audited) and "
            "record the difference.",
            link_path="/orders?status=processing", link_label="Open orders",
        ),
        StepSpec(
            "Check again",
            "Must exit 0; the alert clears at the next reconciliation (within "
            "`RECONCILE_INTERVAL_SECONDS`, 5 minutes by default).",
            command=f"{FLASK} check-integrity",
        ),
    ],
)
