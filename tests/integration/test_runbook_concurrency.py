"""Two people working the same runbook run at once: one tick per step, one finish, no errors."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from app.services.audit import Actor

THREADS = 8


def _run_together(app, action) -> list[BaseException]:
    """Call action(n) in THREADS threads released at the same moment; the exceptions raised."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                action(n)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted on below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_concurrent_ticks_and_finishes_record_each_once(app):
    from app.cli.runbook_content import REDIS_DOWN
    from app.domain.errors import Conflict
    from app.extensions import db
    from app.infra.models import AuditEntry, RunbookRunStep
    from app.services import runbooks

    lead = Actor(name="lead", role="operator", source="web")
    with app.app_context():
        runbooks.ensure_runbook(REDIS_DOWN, lead)
        run_id = runbooks.start_run("redis-down", "drill", lead).id

    def tick(n: int) -> None:
        runbooks.tick_step("redis-down", run_id, 1, "", Actor(f"op{n}", "operator", "web"))

    assert _run_together(app, tick) == []

    def finish(n: int) -> None:
        actor = Actor(f"op{n}", "operator", "web")
        runbooks.finish_run("redis-down", run_id, "resolved", "", actor)

    errors = _run_together(app, finish)
    # Everyone but the first is told the run is already finished; nobody gets a server error.
    assert len(errors) == THREADS - 1 and all(isinstance(e, Conflict) for e in errors), errors

    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RunbookRunStep)) == 1
        actions = db.session.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == run_id)
        ).all()
        assert sorted(actions) == ["runbook_run.finish", "runbook_run.start", "runbook_run.tick"]
