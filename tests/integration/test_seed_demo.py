"""seed-demo: orders in every state (processing and every failure reason too), data that passes
check-integrity, nothing added by a second run, and the audit log naming the command line."""

from sqlalchemy import func, select

from app.domain.orders import FAILURE_REASONS, OrderStatus
from app.extensions import db
from app.infra.models import AuditEntry, Order, SagaStep
from tests.integration.saga_support import run_saga_inline


def _row_counts() -> dict[str, int]:
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


def test_seed_demo_creates_every_state_consistently_once_and_audits_as_the_cli(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    with app.app_context():
        statuses = set(db.session.scalars(select(Order.status)))
        reasons = set(db.session.scalars(select(Order.failure_reason)))
        processing = list(db.session.scalars(
            select(Order).where(Order.status == OrderStatus.PROCESSING)))
        steps = {
            order.id: dict(db.session.execute(
                select(SagaStep.name, SagaStep.status).where(SagaStep.order_id == order.id)
            ).all())
            for order in processing
        }
        audit_sources = set(db.session.execute(
            select(AuditEntry.action, AuditEntry.source, AuditEntry.actor)
            .where(AuditEntry.action.in_(["merchant.create", "user.create", "product.create"]))
        ).all())
        counts = _row_counts()
    assert statuses == set(OrderStatus)
    assert reasons - {None} == set(FAILURE_REASONS)
    # Processing for real: half-way through the saga (stock reserved, payment next), no worker
    # holding it, so the scheduler's recovery resumes it.
    assert processing and all(order.lease_owner is None for order in processing)
    for order_steps in steps.values():
        assert order_steps == {"reserve_inventory": "succeeded", "capture_payment": "pending",
                               "create_shipment": "pending", "complete": "pending"}
    assert {(action, source) for action, source, _ in audit_sources} == {
        ("merchant.create", "cli"), ("user.create", "cli"), ("product.create", "cli")
    }
    assert all(actor.startswith("cli:") for _, _, actor in audit_sources)

    integrity = runner.invoke(args=["check-integrity"])
    assert integrity.exit_code == 0, integrity.output

    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert "already present" in second.output
    with app.app_context():
        assert _row_counts() == counts

    # The half-way orders are real sagas: driven on, they complete and everything still agrees.
    for order_id in steps:
        assert run_saga_inline(app, order_id) == "completed"
    assert runner.invoke(args=["check-integrity"]).exit_code == 0
