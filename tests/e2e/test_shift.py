"""One operations shift in headless Chromium against gunicorn, an RQ worker, PostgreSQL and Redis.

Log in, read the charts, find the failed order and its timeline; hold payments as admin during a
provider incident (audited), follow the runbook, retry a held saga, release the hold and see the
order complete; a viewer is refused every change.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FLAG_PROPAGATION_SECONDS = 5


def log_in(browser, system, username: str, errors: list[str]):
    """A fresh browser context (its own cookies) logged in through the login form."""
    context = browser.new_context(base_url=system.url, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    # Any script error or CSP violation on any page fails the shift.
    page.on("console", lambda m: errors.append(f"{username}: {m.text} {m.location.get('url')}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{username}: {e}"))
    page.goto("/")
    assert "/login" in page.url  # nothing is shown before logging in
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))
    assert f"{username} · " in page.inner_text("header")
    return page


def shot(page, system, name: str) -> None:
    page.screenshot(path=str(system.shots / f"{name}.png"), full_page=True)


def flash_text(page) -> str:
    return " ".join(page.locator(".flash").all_inner_texts())


def set_payment_hold(page, system, on: bool, reason: str) -> None:
    page.goto("/flags")
    form = page.locator("form[action='/flags/payment_hold']")
    box = form.locator("input[name='payment_hold-enabled']")
    box.check() if on else box.uncheck()
    form.locator("textarea[name='payment_hold-reason']").fill(reason)
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/flags$"))
    assert "payment_hold updated" in flash_text(page)


def test_an_operations_shift(browser, shift_system):
    system = shift_system
    errors: list[str] = []
    completed = [system.place_order("tok_visa") for _ in range(2)]
    declined = system.place_order("tok_chargeDeclined")
    for order_id in completed:
        assert system.wait_for_status(order_id, {"completed", "failed"}) == "completed"
    assert system.wait_for_status(declined, {"completed", "failed"}) == "failed"

    # The operator logs in and reads the shift view: the charts are drawn.
    operator = log_in(browser, system, "operator", errors)
    charts = operator.locator(".charts svg")
    assert charts.count() >= 4
    for n in range(charts.count()):
        box = charts.nth(n).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50
    shot(operator, system, "01-shift-view")

    # Filter the failed orders: exactly the declined one.
    operator.click("nav >> text=Orders")
    operator.select_option("select[name=status]", "failed")
    operator.click("form.filters button[type=submit]")
    operator.wait_for_url(re.compile(r"status=failed"))
    rows = operator.locator("table.orders tbody tr")
    assert rows.count() == 1
    assert declined in rows.first.inner_text() and "payment_declined" in rows.first.inner_text()
    shot(operator, system, "02-failed-orders")

    # Its timeline: the saga steps, the failed payment and the compensation of the reservation.
    rows.first.locator("a").click()
    operator.wait_for_url(re.compile(f"/orders/{declined}$"))
    timeline = operator.inner_text("main")
    assert "capture_payment" in timeline and "reserve_inventory" in timeline
    assert operator.locator("table.timeline tbody tr").count() >= 3
    # Declined before any money moved: the operator may re-open it once the card is fixed.
    assert "Re-open and retry" in timeline
    shot(operator, system, "03-order-timeline")

    # A provider incident: the admin holds payments, with a reason, and finds it in the audit log.
    admin = log_in(browser, system, "admin", errors)
    set_payment_hold(admin, system, on=True, reason="INC-7 payment provider timeouts")
    admin.goto("/audit?action=flag.update")
    entry = admin.locator("table tbody tr").first
    assert "payment_hold" in entry.inner_text() and "INC-7 payment provider timeouts" in (
        entry.inner_text()
    )
    assert "admin" in entry.inner_text()
    shot(admin, system, "04-audit-flag")

    # Meanwhile an order arrives and waits before the payment step. The contract gives every
    # process 5 s to see a flag change; the order comes after that, so the worker holds it.
    time.sleep(FLAG_PROPAGATION_SECONDS)
    held = system.place_order("tok_visa")
    assert system.wait_for_status(held, {"processing", "completed", "failed"}) == "processing"

    # The operator follows the runbook and records the run.
    operator.goto("/runbooks/payment-provider-down")
    operator.fill("input[name=reason]", "INC-7")
    operator.click("text=Start run")
    operator.wait_for_url(re.compile(r"/runbooks/payment-provider-down/runs/rbr_"))
    run_url = operator.url
    for step in (1, 2):
        operator.click(f"text=Mark step {step} done")
        operator.wait_for_load_state()
    assert operator.locator("li.rb-step.done").count() == 2
    shot(operator, system, "05-runbook-run")

    # The held order: the operator retries its saga, confirming with a reason.
    operator.goto(f"/orders/{held}")
    assert "payment_hold" in operator.inner_text("main")
    operator.click("text=Retry saga")
    operator.fill("textarea[name=reason]", "INC-7: re-drive after the hold")
    operator.check("input[name=confirm]")
    operator.click("button:has-text('Confirm')")
    operator.wait_for_url(re.compile(f"/orders/{held}$"))
    assert "error" not in (operator.locator(".flash").first.get_attribute("class") or "")

    # The provider is back: the admin releases the hold and the order completes.
    set_payment_hold(admin, system, on=False, reason="INC-7 resolved")
    assert system.wait_for_status(held, {"completed", "failed"}) == "completed"
    operator.reload()
    assert operator.locator("h1 .badge").first.inner_text() == "completed"

    operator.goto(run_url)
    operator.select_option("select[name=outcome]", "resolved")
    operator.click("text=Finish run")
    assert "Run finished: resolved" in flash_text(operator)

    admin.goto("/audit")
    log = admin.inner_text("table")
    for action in ("order.retry_saga", "runbook_run.start", "runbook_run.tick",
                   "runbook_run.finish", "flag.update"):
        assert action in log, action
    shot(admin, system, "06-audit-log")

    # A viewer reads everything and changes nothing: no forms, and the server refuses anyway.
    viewer = log_in(browser, system, "viewer", errors)
    viewer.goto("/flags")
    assert viewer.locator("form[action='/flags/payment_hold']").count() == 0
    viewer.goto(f"/orders/{held}")
    assert viewer.locator("text=Retry saga").count() == 0
    for path in (f"/orders/{held}/retry", "/admin/users", "/audit", "/kb/new"):
        response = viewer.goto(path)
        assert response.status == 403, path
        assert "403" in viewer.inner_text("main")
    viewer.goto("/runbooks/payment-provider-down")
    assert viewer.locator("text=Start run").count() == 0
    # ... and finds the known fix in the knowledge base (full-text search on PostgreSQL).
    viewer.goto("/kb")
    viewer.fill("input[name=q]", "redis memory")
    viewer.press("input[name=q]", "Enter")
    viewer.wait_for_url(re.compile(r"/kb\?q=redis"))
    assert viewer.locator("a.title").all_inner_texts() == [
        "Redis timeouts: the dashboard shows no queues"
    ]
    assert viewer.locator("text=New article").count() == 0
    shot(viewer, system, "07-viewer-refused")

    # The refusals above are logged by the browser as failed loads; anything else is a defect.
    unexpected = [e for e in errors
                  if "favicon.ico" not in e and not e.startswith("viewer: Failed to load resource: "
                                                                "the server responded with a "
                                                                "status of 403")]
    assert unexpected == []
