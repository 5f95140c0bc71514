"""The standard runbooks for this system's failure modes, seeded by `flask --app wsgi seed-demo`.

Slugs are a contract: the Prometheus alert rules and the /slo page link to /runbooks/<slug>.
Each step names the dashboard page or the command it needs.
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
        "*OrdersStuck* fires; the shift view shows a growing *processing* count while throughput "
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
            "Every worker should show a heartbeat younger than 10 s. No workers: start them "
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
            "Its log says `recovered N stuck sagas` on every pass. If it is down, start it.",
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

DATABASE_FAILOVER = RunbookSpec(
    slug="database-failover",
    title="Database failover: promote the replica",
    summary=(
        "**Symptoms:** the primary PostgreSQL is down or unrecoverable; `/readyz` answers 503 "
        "naming the database; writes fail.\n\nReads may still work from "
        "`ORDERPROCESSING_DATABASE_REPLICA_URL`. Promoting the replica makes it the new "
        "primary; data not yet replicated (replication lag at the time of failure) is lost."
    ),
    steps=[
        StepSpec(
            "Confirm the primary is really gone",
            "Do not promote for a network blip: a split brain is worse than a few minutes down.",
            command="pg_isready -h \"$PRIMARY_HOST\" -p 5432",
        ),
        StepSpec(
            "Fence the old primary",
            "Make sure it cannot come back as a second primary: stop it (or cut it off at the "
            "network) before promoting anything.",
            command="pg_ctlcluster 15 main stop --mode=fast  # on the old primary, if reachable",
        ),
        StepSpec(
            "Stop new orders while switching",
            "Switch on `orders_kill_switch` (503 + Retry-After to merchants) if the flag "
            "store is reachable.",
            link_path="/flags", link_label="Feature flags",
        ),
        StepSpec(
            "Check the replica's lag, then promote it",
            "Note the last replayed position in the incident notes (it bounds the data lost).",
            command=(
                "psql -h \"$REPLICA_HOST\" -c 'SELECT pg_last_wal_replay_lsn(), "
                "now() - pg_last_xact_replay_timestamp() AS lag' && "
                "psql -h \"$REPLICA_HOST\" -c 'SELECT pg_promote()'"
            ),
        ),
        StepSpec(
            "Point the app at the new primary and restart web, worker and scheduler",
            "Set `ORDERPROCESSING_DATABASE_URL` to the promoted server; unset the replica URL "
            "until a new replica exists.",
        ),
        StepSpec(
            "Verify the schema revision and the data",
            "Both commands must succeed; `db current` shows the expected head.",
            command=f"{FLASK} db current && {FLASK} check-integrity",
        ),
        StepSpec(
            "Smoke-test the deployment end to end",
            "Places a synthetic order and waits for it to complete. Sagas that were in flight "
            "are re-driven by the scheduler on their own.",
            command=f"{FLASK} smoke-test \"$BASE_URL\"",
        ),
        StepSpec(
            "Reopen and watch",
            "Switch `orders_kill_switch` off; watch the SLOs for an hour.",
            link_path="/slo", link_label="SLOs",
        ),
        StepSpec(
            "Rebuild a replica and take a fresh backup",
            "Until then there is no failover target and the newest backup predates the switch.",
            command=(
                "pg_basebackup -h \"$NEW_PRIMARY\" -D /var/lib/postgresql/15/main -R -X stream "
                f"&& {FLASK} backup"
            ),
        ),
    ],
)

RESTORE_FROM_BACKUP = RunbookSpec(
    slug="restore-from-backup",
    title="Restore from backup",
    summary=(
        "When the data is lost or corrupted and no replica can take over. A backup is a "
        "directory with a manifest (schema revision, row counts, checksums). Everything since "
        "the backup was taken is lost: pick the newest verified one."
    ),
    steps=[
        StepSpec(
            "Stop writers",
            "Stop web, worker and scheduler processes (or switch on `orders_kill_switch` and "
            "pause the queues) so nothing writes during the restore.",
            link_path="/queues", link_label="Pause queues",
        ),
        StepSpec(
            "Pick the newest backup and read its manifest",
            "Backups live under `BACKUP_DIR`; the manifest names the schema revision.",
            command="ls -1t \"$ORDERPROCESSING_BACKUP_DIR\" | head && cat <backup>/manifest.json",
        ),
        StepSpec(
            "Restore into an empty database",
            "`restore` refuses a database holding data unless `--force`; it verifies counts, "
            "checksums and check-integrity and exits non-zero on any mismatch.",
            command=f"{FLASK} restore <backup-dir>",
        ),
        StepSpec(
            "Bring the schema up to the running release",
            "A backup from an older release needs the newer migrations.",
            command=f"{FLASK} db upgrade",
        ),
        StepSpec(
            "Start the processes and re-drive",
            "The scheduler re-drives unfinished sagas from the restored state.",
            link_path="/orders?status=processing", link_label="Processing orders",
        ),
        StepSpec(
            "Take a fresh backup and record what was lost",
            "Note the backup time (the data loss window) in the postmortem.",
            command=f"{FLASK} backup",
            link_path="/postmortems", link_label="Postmortems",
        ),
    ],
)

SECRET_ROTATION = RunbookSpec(
    slug="secret-rotation",
    title="Secret rotation (JWT signing key, webhook secrets, API keys)",
    summary=(
        "Routine or after a suspected leak. Secrets come from Vault (KV v2) or "
        "`ORDERPROCESSING_*` variables. Rotation keeps an overlap window: tokens signed with "
        "the previous JWT key stay valid until they expire."
    ),
    steps=[
        StepSpec(
            "Write the new JWT signing key to Vault with a new key id",
            "Keep the previous key under `previous` so existing tokens verify until expiry.",
            command=(
                "bao kv patch secret/orderprocessing JWT_SIGNING_KEY=\"$(openssl rand -hex 32)\""
            ),
        ),
        StepSpec(
            "Restart web processes one at a time",
            "Rolling restart: each picks up the new key at start; readiness must stay 200.",
            command="kill -HUP $(cat /run/orderprocessing/gunicorn.pid)",
        ),
        StepSpec(
            "Rotate API keys of affected merchants",
            "Create the new key (shown once), hand it over, revoke the old one after the overlap.",
            link_path="/admin/merchants", link_label="Merchants and API keys",
        ),
        StepSpec(
            "Check the audit log",
            "Every key created and revoked is there with who and why.",
            link_path="/audit", link_label="Audit log",
        ),
        StepSpec(
            "Verify nothing leaked into logs",
            "The secret values must never appear in a log line.",
            command="grep -rF \"$OLD_SECRET_PREFIX\" /var/log/orderprocessing/ || echo clean",
        ),
    ],
)

DEPLOY_AND_ROLLBACK = RunbookSpec(
    slug="deploy-and-rollback",
    title="Deploy and roll back",
    summary=(
        "Migrations follow expand/contract, so the old and the new release run side by side "
        "during a rolling deploy. A release flag's rollout percentage is the canary dial. "
        "Roll back the code, never the database: contract migrations ship one release later."
    ),
    steps=[
        StepSpec(
            "Check the SLOs and the error budget before starting",
            "Do not deploy on an exhausted budget or with an alert firing.",
            link_path="/slo", link_label="SLOs",
        ),
        StepSpec(
            "Take a backup",
            "The restore point if a migration goes wrong.",
            command=f"{FLASK} backup",
        ),
        StepSpec(
            "Apply the (expand) migrations",
            "The `release` process type runs this before the new processes start.",
            command=f"{FLASK} db upgrade",
        ),
        StepSpec(
            "Roll the web and worker processes",
            "One at a time, waiting for `/readyz` 200 on each.",
        ),
        StepSpec(
            "Smoke-test the deployment",
            "Places a synthetic order and follows it to a final state.",
            command=f"{FLASK} smoke-test https://orders.example.com",
        ),
        StepSpec(
            "Raise the new feature's release flag step by step",
            "5% -> 25% -> 100% of merchants, watching the SLOs between steps.",
            link_path="/flags", link_label="Feature flags",
        ),
        StepSpec(
            "Roll back if the error rate rises",
            "Set the release flag to 0%, or redeploy the previous release (the schema is "
            "compatible with it). Then check integrity.",
            command=f"{FLASK} check-integrity",
            link_path="/slo", link_label="SLOs",
        ),
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

RUNBOOKS = (
    STUCK_SAGAS, PAYMENT_PROVIDER_DOWN, QUEUE_BACKLOG, REDIS_DOWN, DATABASE_FAILOVER,
    RESTORE_FROM_BACKUP, SECRET_ROTATION, DEPLOY_AND_ROLLBACK, HIGH_ERROR_RATE, SLOW_API,
    SLOW_ORDER_PROCESSING,
)
