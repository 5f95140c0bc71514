"""Secret rotation with overlap windows: the JWT key in a real Vault, and merchant API keys."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from app.auth.principals import key_id_for
from tests.helpers import admin_headers, bearer, create_user, merchant_with_key, token_for
from tests.vault import ROOT_TOKEN

INITIAL = {"secret_key": "k" * 48, "jwt_signing_key": "first-jwt-key-" + "1" * 40,
           "webhook_master_key": "w" * 48}


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


@pytest.fixture
def vault_path(vault):
    path = f"orderprocessing-{uuid.uuid4().hex[:8]}"
    vault.client().secrets.kv.v2.create_or_update_secret(
        path=path, secret=INITIAL, mount_point="secret"
    )
    return path


def vault_app(make_app, database_url, vault, vault_path, **extra):
    return make_app(
        database_url,
        VAULT_ADDR=vault.addr, VAULT_TOKEN=ROOT_TOKEN, VAULT_PATH=vault_path,
        VAULT_REFRESH_SECONDS=0, SECRET_KEY="", JWT_SIGNING_KEY="", WEBHOOK_MASTER_KEY="",
        **extra,
    )


def test_rotated_jwt_key_signs_new_tokens_and_old_tokens_stay_valid_until_they_expire(
    make_app, sqlite_database_url, vault, vault_path
):
    app = vault_app(make_app, sqlite_database_url, vault, vault_path)
    client = app.test_client()
    create_user(app, "rotation-admin", "admin")
    old_token = token_for(client, "rotation-admin")
    assert kid_of(old_token) == key_id_for(INITIAL["jwt_signing_key"])

    rotated = app.test_cli_runner().invoke(args=["secrets", "rotate-jwt-key"])
    assert rotated.exit_code == 0, rotated.output
    new_token = token_for(client, "rotation-admin")  # this request picks up the new version
    assert kid_of(new_token) != kid_of(old_token)
    stored = vault.client().secrets.kv.v2.read_secret_version(
        path=vault_path, mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]
    assert kid_of(new_token) == key_id_for(stored["jwt_signing_key"])
    assert stored["jwt_previous_signing_keys"] == [INITIAL["jwt_signing_key"]]

    for token in (old_token, new_token):
        assert client.get("/api/v1/flags", headers=bearer(token)).status_code == 200
    # A process started after the rotation still knows the previous key (Vault lists it).
    fresh = vault_app(make_app, sqlite_database_url, vault, vault_path).test_client()
    assert fresh.get("/api/v1/flags", headers=bearer(old_token)).status_code == 200

    # Rotating again within the token lifetime is refused; forced, it cuts the oldest key off.
    again = app.test_cli_runner().invoke(args=["secrets", "rotate-jwt-key"])
    assert again.exit_code == 1 and "--force" in again.output
    forced = app.test_cli_runner().invoke(args=["secrets", "rotate-jwt-key", "--force"])
    assert forced.exit_code == 0
    fresh = vault_app(make_app, sqlite_database_url, vault, vault_path).test_client()
    assert fresh.get("/api/v1/flags", headers=bearer(old_token)).status_code == 401
    assert fresh.get("/api/v1/flags", headers=bearer(new_token)).status_code == 200
    with app.app_context():
        from app.services import audit

        entries = audit.list_entries(action="secret.rotate").items
    assert len(entries) == 2
    assert INITIAL["jwt_signing_key"] not in json.dumps([e.before for e in entries])


def test_a_running_process_keeps_the_replaced_key_only_for_the_token_lifetime(
    make_app, sqlite_database_url, vault, vault_path
):
    from app.infra.secrets import SecretRefresher

    app = vault_app(make_app, sqlite_database_url, vault, vault_path, JWT_TTL_SECONDS=60)
    now = [time.time()]
    refresher = SecretRefresher(app.config, clock=lambda: now[0])
    # Someone edits the key in Vault by hand, without listing the old one as previous.
    vault.client().secrets.kv.v2.create_or_update_secret(
        path=vault_path, secret={**INITIAL, "jwt_signing_key": "hand-edited-" + "2" * 40},
        mount_point="secret",
    )
    assert refresher.maybe_refresh()
    assert app.config["JWT_SIGNING_KEY"].startswith("hand-edited-")
    assert app.config["JWT_PREVIOUS_SIGNING_KEYS"] == [INITIAL["jwt_signing_key"]]
    assert app.config["SECRET_KEY"] == INITIAL["secret_key"]
    now[0] += 61
    assert not refresher.maybe_refresh()  # same version: only the retired key ages out
    assert app.config["JWT_PREVIOUS_SIGNING_KEYS"] == []


def test_a_rotated_database_password_reaches_new_connections_of_web_and_worker(
    make_app, postgresql_database_url, vault, vault_path
):
    """The password changed in Vault is picked up by a worker between jobs and used by every new
    connection from then on, without a restart (the local PostgreSQL trusts any password, so the
    password each new connection presents is what is checked)."""
    from sqlalchemy import event

    from app.extensions import db
    from tests.helpers import drain_queues

    vault.client().secrets.kv.v2.create_or_update_secret(
        path=vault_path, secret={**INITIAL, "database_password": "db-pass-" + "1" * 24},
        mount_point="secret",
    )
    app = vault_app(make_app, postgresql_database_url, vault, vault_path)
    presented = []
    with app.app_context():
        event.listen(db.engine, "do_connect",
                     lambda _d, _r, _a, cparams: presented.append(cparams.get("password")))
        db.engine.dispose()
        db.session.execute(text_select_one())
        db.session.remove()
    assert presented == ["db-pass-" + "1" * 24]

    vault.client().secrets.kv.v2.create_or_update_secret(
        path=vault_path, secret={**INITIAL, "database_password": "db-pass-" + "2" * 24},
        mount_point="secret",
    )
    app.extensions["job_queue"].queue("default").enqueue("worker.jobs.noop")
    drain_queues(app)  # the worker checks Vault before the job (VAULT_REFRESH_SECONDS=0)
    assert app.config["DATABASE_PASSWORD"] == "db-pass-" + "2" * 24
    with app.app_context():
        db.engine.dispose()
        db.session.execute(text_select_one())
        db.session.remove()
    assert presented[-1] == "db-pass-" + "2" * 24


def text_select_one():
    from sqlalchemy import text

    return text("SELECT 1")


def test_rotated_api_key_overlaps_then_only_the_new_key_works(client, app):
    admin = admin_headers(app, client)
    merchant_id, old_headers = merchant_with_key(client, admin)
    from app.infra.models import ApiKey

    with app.app_context():
        from app.extensions import db

        key_id = db.session.query(ApiKey.id).filter_by(merchant_id=merchant_id).scalar()
    response = client.post(f"/api/v1/api-keys/{key_id}/rotate", json={"overlap_seconds": 2},
                           headers=admin)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["replaces"] == key_id and body["key"].startswith(body["prefix"])
    new_headers = {"X-API-Key": body["key"]}
    assert client.get("/api/v1/products", headers=old_headers).status_code == 200
    assert client.get("/api/v1/products", headers=new_headers).status_code == 200
    time.sleep(2.1)
    assert client.get("/api/v1/products", headers=old_headers).status_code == 401
    assert client.get("/api/v1/products", headers=new_headers).status_code == 200
    # An expired key cannot be rotated again (that would resurrect it).
    again = client.post(f"/api/v1/api-keys/{key_id}/rotate", json={}, headers=admin)
    assert again.status_code == 409


def test_api_key_rotation_validates_the_window_and_needs_an_admin(sqlite_client, sqlite_app):
    admin = admin_headers(sqlite_app, sqlite_client)
    _merchant, headers = merchant_with_key(sqlite_client, admin)
    bad = sqlite_client.post("/api/v1/api-keys/key_nope/rotate", json={"overlap_seconds": -1},
                             headers=admin)
    assert bad.status_code == 422
    assert sqlite_client.post("/api/v1/api-keys/key_nope/rotate", json={},
                              headers=admin).status_code == 404
    assert sqlite_client.post("/api/v1/api-keys/key_nope/rotate", json={},
                              headers=headers).status_code == 403



def test_in_production_a_weak_rotated_secret_is_refused_and_the_current_ones_kept(
    make_app, sqlite_database_url, vault, vault_path, caplog
):
    import secrets as random_secrets

    from app.infra.secrets import SecretRefresher

    strong = {name: random_secrets.token_urlsafe(48) for name in INITIAL}
    vault.client().secrets.kv.v2.create_or_update_secret(
        path=vault_path, secret=strong, mount_point="secret"
    )
    app = vault_app(make_app, sqlite_database_url, vault, vault_path)
    config = {**app.config, "ENV": "production"}  # the refresher's rules, not a production app
    refresher = SecretRefresher(config, clock=lambda: time.time() + 3600)
    weak = "changeme-changeme-changeme-changeme"
    vault.client().secrets.kv.v2.create_or_update_secret(
        path=vault_path, secret={**strong, "jwt_signing_key": weak}, mount_point="secret"
    )
    assert not refresher.maybe_refresh()
    assert config["JWT_SIGNING_KEY"] == strong["jwt_signing_key"]
    refused = [r for r in caplog.records if "rotated secrets refused" in r.getMessage()]
    assert len(refused) == 1 and "JWT_SIGNING_KEY is too weak" in refused[0].getMessage()
    assert weak not in caplog.text
    refresher.next_check = 0
    assert not refresher.maybe_refresh()  # the same version again: refused, not logged again
    assert len([r for r in caplog.records if "rotated secrets refused" in r.getMessage()]) == 1

    # The same value as another secret is refused too; a sound new value is taken.
    vault.client().secrets.kv.v2.create_or_update_secret(
        path=vault_path, secret={**strong, "jwt_signing_key": strong["secret_key"]},
        mount_point="secret",
    )
    refresher.next_check = 0
    assert not refresher.maybe_refresh()
    assert "share one value" in caplog.text
    rotated = random_secrets.token_urlsafe(48)
    vault.client().secrets.kv.v2.create_or_update_secret(
        path=vault_path, secret={**strong, "jwt_signing_key": rotated}, mount_point="secret"
    )
    refresher.next_check = 0
    assert refresher.maybe_refresh()
    assert config["JWT_SIGNING_KEY"] == rotated
