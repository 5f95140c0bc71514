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


def test_commands_answer_an_unreachable_database_or_a_bad_path_in_one_line(tmp_path):
    import subprocess

    from tests.servers import BIN, ROOT, free_port

    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
        "ORDERPROCESSING_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x",
        "ORDERPROCESSING_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    users = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "users", "create", "someone", "--role", "viewer",
         "--password", "long-enough-password"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert users.returncode == 1
    assert "the database is unreachable" in users.stderr and "Traceback" not in users.stderr
    (tmp_path / "a-file").write_text("")
    backup = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "backup", str(tmp_path / "a-file")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert backup.returncode == 2 and "is a file" in backup.stderr
    assert "Traceback" not in backup.stderr
