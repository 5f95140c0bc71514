"""The standard runbooks for this system's failure modes, seeded by `flask --app wsgi seed-demo`.

Slugs are a contract: the Prometheus alert rules and the /slo page link to /runbooks/<slug>.
Each step names the dashboard page or the command it needs. The texts live in
runbook_incidents.py and runbook_procedures.py.
"""

from __future__ import annotations

from app.cli.runbook_incidents import (
    HIGH_ERROR_RATE,
    INTEGRITY_DISCREPANCIES,
    PAYMENT_PROVIDER_DOWN,
    QUEUE_BACKLOG,
    REDIS_DOWN,
    SLOW_API,
    SLOW_ORDER_PROCESSING,
    STUCK_SAGAS,
)
from app.cli.runbook_procedures import (
    DATABASE_FAILOVER,
    DEPLOY_AND_ROLLBACK,
    RESTORE_FROM_BACKUP,
    SECRET_ROTATION,
)

RUNBOOKS = (
    STUCK_SAGAS, PAYMENT_PROVIDER_DOWN, QUEUE_BACKLOG, REDIS_DOWN, DATABASE_FAILOVER,
    RESTORE_FROM_BACKUP, SECRET_ROTATION, DEPLOY_AND_ROLLBACK, HIGH_ERROR_RATE, SLOW_API,
    SLOW_ORDER_PROCESSING, INTEGRITY_DISCREPANCIES,
)
