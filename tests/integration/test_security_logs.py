"""No secret value ever appears in a log line: a full run (gunicorn, worker, scheduler and CLI
commands, at DEBUG) with known secrets, then every log is searched for them."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.servers import (
    BIN,
    ROOT,
    GunicornServer,
    SchedulerProcess,
    WorkerProcess,
    settings_env,
    settings_of,
)


def known(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex}{uuid.uuid4().hex}"


def run_cli(args: list[str], settings: dict, log: Path) -> subprocess.CompletedProcess:
    with open(log, "ab") as out:
        return subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=settings_env(settings),
            stdout=out, stderr=subprocess.STDOUT, timeout=120, check=False,
        )


@pytest.mark.slow
def test_no_secret_appears_in_any_log_line_of_a_full_run(make_app, postgresql_database_url,
                                                         tmp_path):
    app = make_app(postgresql_database_url)  # empties the tables afterwards
    secrets = {
        "SECRET_KEY": known("secret-key"),
        "JWT_SIGNING_KEY": known("jwt-key"),
        "WEBHOOK_MASTER_KEY": known("webhook-master"),
        "DATABASE_PASSWORD": known("db-password"),
    }
    settings = {**settings_of(app), **secrets, "LOG_LEVEL": "DEBUG",
                "SCHEDULER_INTERVAL_SECONDS": 1, "BACKUP_INTERVAL_SECONDS": 3600,
                "BACKUP_DIR": str(tmp_path / "backups")}
    # A password in the database URL too (the local server trusts it; logs must not show it).
    settings["DATABASE_URL"] = postgresql_database_url.replace(
        "postgres@", f"postgres:{secrets['DATABASE_PASSWORD']}@"
    )
    admin_password = known("admin-password")
    cli_log = tmp_path / "cli.log"
    assert run_cli(["users", "create", "log-admin", "--role", "admin", "--password",
                    admin_password], settings, cli_log).returncode == 0
    seen: dict[str, str] = {}
    with GunicornServer(settings, tmp_path, workers=2) as web, \
            WorkerProcess(settings, tmp_path), SchedulerProcess(settings, tmp_path):
        api = web.url + "/api/v1"
        assert requests.post(api + "/auth/token", timeout=10, json={
            "username": "log-admin", "password": "wrong-" + admin_password}).status_code == 401
        token = requests.post(api + "/auth/token", timeout=10, json={
            "username": "log-admin", "password": admin_password}).json()["access_token"]
        seen["access token"] = token
        admin = {"Authorization": f"Bearer {token}"}
        merchant = requests.post(api + "/merchants", json={"name": "Logs"}, headers=admin,
                                 timeout=10).json()
        key = requests.post(f"{api}/merchants/{merchant['id']}/api-keys", json={"name": "k"},
                            headers=admin, timeout=10).json()
        seen["API key"] = key["key"]
        rotated = requests.post(f"{api}/api-keys/{key['id']}/rotate", json={}, headers=admin,
                                timeout=10).json()
        seen["rotated API key"] = rotated["key"]
        headers = {"X-API-Key": rotated["key"]}
        hook = requests.post(api + "/webhooks", headers=headers, timeout=10, json={
            "url": "http://127.0.0.1:9/hook", "events": ["order.completed"]}).json()
        seen["webhook secret"] = hook["secret"]
        requests.post(api + "/products", headers=headers, timeout=10, json={
            "sku": "LOG-1", "name": "x", "price": 100, "currency": "MYR", "stock": 10})
        order = requests.post(api + "/orders", headers=headers, timeout=10, json={
            "items": [{"sku": "LOG-1", "quantity": 1}],
            "customer": {"email": "a@example.com", "name": "A"},
            "shipping_address": {"line1": "1", "city": "KL", "postal_code": "1",
                                 "country": "MY"},
            "payment": {"token": "tok_visa"}}).json()
        deadline = time.monotonic() + 60
        while requests.get(f"{api}/orders/{order['id']}", headers=headers,
                           timeout=10).json()["status"] != "completed":
            assert time.monotonic() < deadline, "the order did not complete"
            time.sleep(0.3)
        assert requests.get(api + "/orders", headers={"X-API-Key": "opk_bogus_" + "x" * 40},
                            timeout=10).status_code == 401
        assert run_cli(["backup", str(tmp_path / "manual-backup")], settings, cli_log
                       ).returncode == 0
        assert run_cli(["smoke-test", web.url], settings, cli_log).returncode == 0
        time.sleep(2)  # a scheduler tick or two (SLO evaluation, scheduled backup)
    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    assert {"cli.log"} < set(logs) and len(logs) >= 4
    assert sum(len(text) for text in logs.values()) > 2000, "the run logged at DEBUG"
    assert any(p.name.startswith("backup-") for p in (tmp_path / "backups").iterdir())
    for label, value in {**secrets, "admin password": admin_password, **seen}.items():
        for name, text in logs.items():
            assert value not in text, f"the {label} appears in {name}"
