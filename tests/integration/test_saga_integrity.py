"""`flask check-integrity` passes on consistent data and names every disagreement otherwise."""

from sqlalchemy import select, update

from tests.helpers import drain_queues, order_body
from tests.integration.saga_support import merchant_with_stock


def _run(app):
    return app.test_cli_runner().invoke(args=["check-integrity"])


def test_check_integrity_is_clean_after_real_sagas_and_reports_each_corruption(app, client):
    from app.extensions import db
    from app.infra.models import Order, Product, ProviderPayment, SagaStep

    merchant = merchant_with_stock(app, client, stock=10)
    ids = [
        client.post("/api/v1/orders", json=order_body(**kw), headers=merchant).get_json()["id"]
        for kw in ({}, {"country": "XX"}, {"token": "tok_chargeDeclined"})
    ]
    drain_queues(app)
    clean = _run(app)
    assert clean.exit_code == 0, clean.output
    assert "integrity OK" in clean.output

    completed, shipped_xx, _declined = ids
    with app.app_context():
        db.session.execute(update(Product).values(reserved=Product.reserved + 1))
        capture = db.session.scalar(
            select(ProviderPayment).where(ProviderPayment.order_ref == completed)
        )
        db.session.add(
            ProviderPayment(
                id="pay_duplicate",
                idempotency_key="forged",
                kind="capture",
                order_ref=completed,
                amount=capture.amount,
                currency=capture.currency,
                status="captured",
            )
        )
        db.session.execute(
            update(SagaStep)
            .where(SagaStep.order_id == shipped_xx, SagaStep.name == "capture_payment")
            .values(status="succeeded")
        )
        db.session.execute(
            update(Order).where(Order.id == completed).values(status="completed")
        )
        db.session.commit()
        db.session.remove()

    broken = _run(app)
    assert broken.exit_code == 1
    lines = broken.output.splitlines()
    assert any("SKU-1" in line and "open reservations hold 0" in line for line in lines)
    assert any(completed in line and "charged 2 times" in line for line in lines)
    assert any(shipped_xx in ln and "never compensated: capture_payment" in ln for ln in lines)
    assert "disagreement(s) found" in broken.output
