"""The operations contract's commands: users create, seed-demo."""

from sqlalchemy import func, select

from app.extensions import db
from app.infra.models import AuditEntry, Merchant, Order, User


def test_users_create_prompts_for_the_password_and_audits(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "nadia", "--role", "operator"],
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert "created operator nadia" in result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "nadia"))
        assert user.role == "operator"
        assert user.password_hash.startswith("$argon2id$")
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.target_id == user.id))
        assert (entry.action, entry.source) == ("user.create", "cli")


def test_users_create_refuses_bad_input_with_a_clear_message(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "m", "--role", "merchant", "--password", "short"]
    )
    assert result.exit_code == 2
    assert "password: must be at least 12 characters" in result.output
    assert "merchant_id: is required for role merchant" in result.output
    runner.invoke(args=["users", "create", "taken", "--role", "viewer", "--password", "x" * 12])
    again = runner.invoke(
        args=["users", "create", "taken", "--role", "viewer", "--password", "x" * 12]
    )
    assert again.exit_code == 1
    assert "taken" in again.output and "Traceback" not in again.output


def test_seed_demo_is_idempotent_and_covers_every_order_state(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    with app.app_context():
        counts = dict(
            db.session.execute(select(Order.status, func.count()).group_by(Order.status)).all()
        )
        reasons = set(
            db.session.scalars(
                select(Order.failure_reason).where(Order.failure_reason.is_not(None))
            )
        )
        merchants = db.session.scalar(select(func.count()).select_from(Merchant))
        orders = db.session.scalar(select(func.count()).select_from(Order))
    assert {"pending", "completed", "failed", "cancelled"} <= set(counts)
    assert {"payment_declined", "payment_error", "shipment_failed"} <= reasons
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0
    assert "already present" in second.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Merchant)) == merchants
        assert db.session.scalar(select(func.count()).select_from(Order)) == orders
