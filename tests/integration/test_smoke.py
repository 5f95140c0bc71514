"""`flask smoke-test URL` against a real gunicorn and a real worker on loopback."""

from __future__ import annotations

import pytest

from tests.servers import GunicornServer, WorkerProcess, settings_of


def audit_actions(app, action: str):
    from app.services import audit

    with app.app_context():
        return audit.list_entries(action=action).items


@pytest.mark.slow
def test_smoke_test_places_a_synthetic_order_and_follows_it_to_completion(sqlite_app, tmp_path):
    settings = settings_of(sqlite_app)
    with GunicornServer(settings, tmp_path, workers=2) as server, \
            WorkerProcess(settings, tmp_path):
        result = sqlite_app.test_cli_runner().invoke(args=["smoke-test", server.url])
        assert result.exit_code == 0, result.output
        assert "ok   POST /api/v1/orders" in result.output
        assert "smoke test passed: order ord_" in result.output
        again = sqlite_app.test_cli_runner().invoke(args=["smoke-test", server.url])
        assert again.exit_code == 0, again.output
    # Each run used its own short-lived key and revoked it afterwards.
    assert len(audit_actions(sqlite_app, "api_key.create")) == 2
    assert len(audit_actions(sqlite_app, "api_key.revoke")) == 2
    assert len(audit_actions(sqlite_app, "merchant.create")) == 1


@pytest.mark.slow
def test_smoke_test_fails_when_no_worker_finishes_the_order(sqlite_app, tmp_path):
    with GunicornServer(settings_of(sqlite_app), tmp_path, workers=1) as server:
        result = sqlite_app.test_cli_runner().invoke(
            args=["smoke-test", server.url, "--timeout", "2"]
        )
    assert result.exit_code == 1
    assert "still pending" in result.output and "workers running" in result.output


def test_smoke_test_fails_fast_when_nothing_answers(sqlite_app):
    result = sqlite_app.test_cli_runner().invoke(args=["smoke-test", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "FAIL GET /healthz: ConnectionError" in result.output
