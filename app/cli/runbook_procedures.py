"""Runbooks for planned and recovery procedures: failover, restore, secret rotation, deploys."""

from __future__ import annotations

from app.cli.runbook_incidents import FLASK
from app.domain.runbooks import StepSpec
from app.services.runbooks import RunbookSpec

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
