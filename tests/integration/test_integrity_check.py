"""check-integrity reads only the orders the database flags, yet reports what judging every order
would, and it reads one snapshot, so a saga finishing mid-check is no disagreement; it reconciles
every order with its lines."""

import pytest
from sqlalchemy import delete, event, select, update

from app.extensions import db
from app.infra.models import (
    Order,
    OrderLine,
    Product,
    ProviderPayment,
    ProviderShipment,
    SagaStep,
)
from app.infra.models.base import utcnow
from tests.integration.saga_support import run_saga_inline


class _NoQueue:
    def enqueue_saga(self, order_id, *, request_id=None):
        return None


def _place(app, merchant_id: str, pay_with: str = "tok_visa", country: str = "MY",
           items: list | None = None) -> str:
    from app.services import orders

    with app.app_context():
        body = {
            "items": items or [{"sku": "SKU-1", "quantity": 2}],
            "customer": {"email": "c@example.com", "name": "C"},
            "shipping_address": {"line1": "1 Road", "city": "KL", "postal_code": "50450",
                                 "country": country},
            "payment": {"token": pay_with},
        }
        return orders.place_order(merchant_id, body, _NoQueue()).id


def _merchant(app) -> str:
    from app.services import accounts, catalog

    with app.app_context():
        merchant = accounts.create_merchant("Integrity Co")
        catalog.create_product(merchant.id, sku="SKU-1", name="Thing", price=1000,
                               currency="MYR", stock=100)
        return merchant.id


def _every_order_judged() -> list[str]:
    """The reference: the same rules applied to every order, no prefilter."""
    from collections import Counter, defaultdict

    from app.services.integrity import check_stock, order_problems, payment_problems

    steps, charged, refunded = defaultdict(dict), defaultdict(list), defaultdict(list)
    for order_id, name, status in db.session.execute(
            select(SagaStep.order_id, SagaStep.name, SagaStep.status)):
        steps[order_id][name] = status
    for ref, kind, amount in db.session.execute(select(
            ProviderPayment.order_ref, ProviderPayment.kind, ProviderPayment.amount)
            .order_by(ProviderPayment.seq)):
        (charged if kind == "capture" else refunded)[ref].append(amount)
    live = Counter(db.session.scalars(select(ProviderShipment.order_ref)
                                      .where(ProviderShipment.status != "cancelled")))
    orders = db.session.execute(select(Order.id, Order.status, Order.failure_reason,
                                       Order.total_amount).order_by(Order.seq)).all()
    lines = check_stock()
    lines += [p for o in orders for p in order_problems(o, steps.get(o.id, {}))]
    lines += [p for o in orders
              for p in payment_problems(o, charged[o.id], refunded[o.id], live[o.id])]
    db.session.rollback()
    return lines


def _payment(order_id: str, kind: str, amount: int, key: str) -> ProviderPayment:
    return ProviderPayment(id=f"pay_{key}", idempotency_key=key, kind=kind, order_ref=order_id,
                           amount=amount, currency="MYR",
                           status="captured" if kind == "capture" else "refunded")


def test_every_kind_of_disagreement_is_reported_as_judging_every_order_would(app):
    from app.services.integrity import check_integrity

    merchant = _merchant(app)
    plan = {
        "refunded_completed": "tok_visa", "wrong_amount": "tok_visa", "uncharged": "tok_visa",
        "missing_step": "tok_visa", "running_step": "tok_visa", "clean": "tok_visa",
        "no_reason": "tok_chargeDeclined", "no_failed_step": "tok_chargeDeclined",
        "refund_no_charge": "tok_chargeDeclined", "unrefunded": ("tok_visa", "XX"),
        "double_refund": ("tok_visa", "XX"), "left_reserved": "tok_chargeDeclined",
    }
    ids = {}
    for name, spec in plan.items():
        token, country = spec if isinstance(spec, tuple) else (spec, "MY")
        ids[name] = _place(app, merchant, token, country)
        run_saga_inline(app, ids[name])
    cancelled = _place(app, merchant)
    ids["live_shipment"] = cancelled
    with app.app_context():
        db.session.execute(update(Order).where(Order.id == cancelled)
                           .values(cancel_requested_at=utcnow()))
        db.session.commit()
    run_saga_inline(app, cancelled)

    with app.app_context():
        assert check_integrity() == []
        total = db.session.scalar(select(Order.total_amount).where(Order.id == ids["clean"]))
        db.session.add_all([
            _payment(ids["refunded_completed"], "refund", total, "r1"),
            _payment(ids["refund_no_charge"], "refund", total, "r2"),
            _payment(ids["double_refund"], "refund", total, "r3"),
            ProviderShipment(id="shp_live", idempotency_key="s1", order_ref=cancelled,
                             country="MY", status="created"),
        ])
        db.session.execute(update(ProviderPayment).where(
            ProviderPayment.order_ref == ids["wrong_amount"]).values(amount=total + 1))
        db.session.execute(delete(ProviderPayment).where(
            ProviderPayment.order_ref == ids["uncharged"]))
        db.session.execute(delete(ProviderPayment).where(
            ProviderPayment.order_ref == ids["unrefunded"], ProviderPayment.kind == "refund"))
        db.session.execute(delete(SagaStep).where(SagaStep.order_id == ids["missing_step"],
                                                  SagaStep.name == "create_shipment"))
        db.session.execute(update(SagaStep).where(SagaStep.order_id == ids["running_step"],
                                                  SagaStep.name == "create_shipment")
                           .values(status="running"))
        db.session.execute(update(Order).where(Order.id == ids["no_reason"])
                           .values(failure_reason=None))
        db.session.execute(update(SagaStep).where(SagaStep.order_id == ids["no_failed_step"],
                                                  SagaStep.status == "failed")
                           .values(status="pending"))
        db.session.execute(update(SagaStep).where(SagaStep.order_id == ids["left_reserved"],
                                                  SagaStep.name == "reserve_inventory")
                           .values(status="succeeded"))
        db.session.commit()

        found = check_integrity()
        assert found == _every_order_judged()
    text = "\n".join(found)
    expected = {
        "refunded_completed": "completed but refunded",
        "wrong_amount": f"charged {total + 1}, order total {total}",
        "uncharged": "completed but charged 0 times",
        "missing_step": "has 3 saga steps, expected 4",
        "running_step": "steps not succeeded: create_shipment",
        "no_reason": "no failure_reason",
        "no_failed_step": "no failed step",
        "refund_no_charge": "refunded without a charge",
        "unrefunded": "charged but refunded 0 times",
        "double_refund": "refunded 2 times",
        "left_reserved": "steps never compensated: reserve_inventory",
        "live_shipment": "shipment never cancelled",
    }
    for name, message in expected.items():
        assert any(ids[name] in line and message in line for line in found), (name, text)
    assert "open reservations hold 2" in text  # left_reserved's units look reserved again
    assert ids["clean"] not in text


def test_order_lines_that_disagree_with_their_order_are_reported(app):
    """Lines, line totals and order totals are reconciled in the database, for every order."""
    from app.services import catalog
    from app.services.integrity import check_integrity

    merchant = _merchant(app)
    with app.app_context():
        catalog.create_product(merchant, sku="SKU-2", name="Other", price=250, currency="MYR",
                               stock=100)
    two_lines = [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 3}]
    ids = {name: _place(app, merchant, items=two_lines if name == "lost_line" else None)
           for name in ("line_total", "quantity", "no_lines", "lost_line", "huge", "clean")}
    for order_id in ids.values():
        run_saga_inline(app, order_id)

    with app.app_context():
        assert check_integrity() == []
        totals = dict(db.session.execute(select(Order.id, Order.total_amount)).all())
        assert totals[ids["clean"]] == 2000 and totals[ids["lost_line"]] == 2750
        assert [tuple(row) for row in db.session.execute(
            select(OrderLine.quantity, OrderLine.unit_price, OrderLine.line_total)
            .where(OrderLine.order_id == ids["clean"]))] == [(2, 1000, 2000)]
    result = app.test_cli_runner().invoke(args=["check-integrity"])
    assert result.exit_code == 0, result.output

    def line(name: str, sku: str = "SKU-1"):
        return select(OrderLine.seq).where(OrderLine.order_id == ids[name], OrderLine.sku == sku)

    with app.app_context():
        seqs = {name: db.session.scalar(line(name)) for name in ("line_total", "quantity", "huge")}
        lost = db.session.scalar(line("lost_line", "SKU-2"))
        db.session.execute(update(OrderLine).where(OrderLine.seq == seqs["line_total"])
                           .values(line_total=2001))
        db.session.execute(update(OrderLine).where(OrderLine.seq == seqs["quantity"])
                           .values(quantity=3))
        # 2**31 - 1 units at 1000: the product overflows a 32-bit integer.
        db.session.execute(update(OrderLine).where(OrderLine.seq == seqs["huge"])
                           .values(quantity=2**31 - 1))
        db.session.execute(delete(OrderLine).where(OrderLine.order_id == ids["no_lines"]))
        db.session.execute(delete(OrderLine).where(OrderLine.seq == lost))
        db.session.commit()

        found = check_integrity()

    def label(name: str) -> str:
        return f"order {ids[name]} (completed)"

    expected = [
        f"{label('line_total')}: line {seqs['line_total']} (SKU-1) total 2001, "
        "quantity 2 x unit price 1000 = 2000",
        f"{label('line_total')}: lines add up to 2001, order total 2000",
        f"{label('quantity')}: line {seqs['quantity']} (SKU-1) total 2000, "
        "quantity 3 x unit price 1000 = 3000",
        f"{label('no_lines')}: has no lines",
        f"{label('lost_line')}: lines add up to 2000, order total 2750",
        f"{label('huge')}: line {seqs['huge']} (SKU-1) total 2000, "
        f"quantity {2**31 - 1} x unit price 1000 = {(2**31 - 1) * 1000}",
    ]
    assert found == expected
    assert ids["clean"] not in "\n".join(found)
    result = app.test_cli_runner().invoke(args=["check-integrity"])
    assert result.exit_code == 1
    assert result.output.splitlines()[:len(expected)] == expected


@pytest.fixture
def postgresql_app(make_app, postgresql_database_url):
    return make_app(postgresql_database_url)


def _hold_payments(app, on: bool) -> None:
    from app.services import flags

    with app.app_context():
        flags.ensure_builtin_flags()
        flags.set_flag(flags.PAYMENT_HOLD, enabled=on)


def test_a_saga_completing_between_two_reads_of_the_check_is_no_disagreement(postgresql_app):
    """PostgreSQL: the whole check reads one snapshot (READ COMMITTED would mix two states)."""
    from app.services.integrity import check_integrity

    app = postgresql_app
    merchant = _merchant(app)
    order_id = _place(app, merchant)
    _hold_payments(app, True)  # the saga stops with its stock reserved, before the payment
    assert run_saga_inline(app, order_id) == "held"
    _hold_payments(app, False)
    with app.app_context():
        assert db.session.scalar(select(Product.reserved)) == 2
        assert check_integrity() == []

    finished = []

    def finish_the_saga_once(_conn, _cursor, statement, *_args):
        # Between the check's first read (the open reservations) and its read of the products.
        if "FROM products" in statement and not finished:
            finished.append(run_saga_inline(app, order_id))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", finish_the_saga_once)
        try:
            problems = check_integrity()
        finally:
            event.remove(db.engine, "before_cursor_execute", finish_the_saga_once)
        assert finished == ["completed"], "the saga finished during the check"
        assert problems == []
        assert check_integrity() == []
