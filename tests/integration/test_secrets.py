"""Secrets from a real Vault-compatible server (KV v2 via hvac), and production refusals."""

import pytest

from app.infra.secrets import load_secrets
from config import ConfigError, load_settings

STRONG = {
    "secret_key": "k" * 40 + "-strong-1",
    "jwt_signing_key": "j" * 40 + "-strong-2",
    "webhook_master_key": "w" * 40 + "-strong-3",
    "database_password": "db-password-from-vault",
}


def settings_for(vault, tmp_path, **extra):
    environ = {
        "ORDERPROCESSING_ENV": "production",
        "ORDERPROCESSING_INSTANCE_PATH": str(tmp_path),
        "ORDERPROCESSING_VAULT_ADDR": vault.addr,
        "ORDERPROCESSING_VAULT_TOKEN": "test-root-token",
        "ORDERPROCESSING_VAULT_PATH": "orderprocessing-test",
        **extra,
    }
    return load_settings(environ=environ)


def test_secrets_are_read_from_vault_kv2(vault, tmp_path):
    vault.client().secrets.kv.v2.create_or_update_secret(
        path="orderprocessing-test", secret=STRONG, mount_point="secret"
    )
    resolved = load_secrets(settings_for(vault, tmp_path))
    assert resolved["SECRET_KEY"] == "k" * 40 + "-strong-1"
    assert resolved["JWT_SIGNING_KEY"] == "j" * 40 + "-strong-2"
    assert resolved["DATABASE_PASSWORD"] == "db-password-from-vault"
    assert resolved["SECRETS_SOURCE"] == "vault"
    assert not list(tmp_path.iterdir()), "secrets from Vault are never written to disk"


def test_approle_login_reads_the_same_secrets(vault, tmp_path):
    client = vault.client()
    client.secrets.kv.v2.create_or_update_secret(
        path="orderprocessing-test", secret=STRONG, mount_point="secret"
    )
    if "approle/" not in client.sys.list_auth_methods():
        client.sys.enable_auth_method("approle")
    client.sys.create_or_update_policy(
        "op-read", 'path "secret/data/orderprocessing-test" { capabilities = ["read"] }'
    )
    client.auth.approle.create_or_update_approle("op", token_policies=["op-read"])
    role_id = client.auth.approle.read_role_id("op")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("op")["data"]["secret_id"]
    settings = settings_for(
        vault,
        tmp_path,
        ORDERPROCESSING_VAULT_TOKEN="",
        ORDERPROCESSING_VAULT_ROLE_ID=role_id,
        ORDERPROCESSING_VAULT_SECRET_ID=secret_id,
    )
    assert load_secrets(settings)["JWT_SIGNING_KEY"] == "j" * 40 + "-strong-2"


@pytest.mark.parametrize("weak", ["short", "a" * 64, "Password"])
def test_production_refuses_short_repetitive_or_placeholder_secrets(tmp_path, weak):
    from app.infra.secrets import validate_secrets

    strong = {"SECRET_KEY": STRONG["secret_key"], "JWT_SIGNING_KEY": STRONG["jwt_signing_key"],
              "WEBHOOK_MASTER_KEY": STRONG["webhook_master_key"]}
    validate_secrets(strong)  # passes
    with pytest.raises(ConfigError, match="SECRET_KEY is too weak"):
        validate_secrets({**strong, "SECRET_KEY": weak})


def test_production_refuses_weak_secrets_from_vault(vault, tmp_path):
    vault.client().secrets.kv.v2.create_or_update_secret(
        path="orderprocessing-test",
        secret={**STRONG, "jwt_signing_key": "short"},
        mount_point="secret",
    )
    with pytest.raises(ConfigError, match="JWT_SIGNING_KEY is too weak"):
        load_secrets(settings_for(vault, tmp_path))


def test_unreachable_vault_is_a_clear_start_up_error(tmp_path):
    settings = load_settings(
        environ={
            "ORDERPROCESSING_ENV": "production",
            "ORDERPROCESSING_INSTANCE_PATH": str(tmp_path),
            "ORDERPROCESSING_VAULT_ADDR": "http://127.0.0.1:1",
            "ORDERPROCESSING_VAULT_TOKEN": "t",
        }
    )
    with pytest.raises(ConfigError, match="cannot read secrets from Vault"):
        load_secrets(settings)


def test_production_without_secrets_refuses_to_start(tmp_path):
    settings = load_settings(
        environ={
            "ORDERPROCESSING_ENV": "production",
            "ORDERPROCESSING_INSTANCE_PATH": str(tmp_path),
        }
    )
    with pytest.raises(ConfigError) as exc:
        load_secrets(settings)
    assert "SECRET_KEY is missing" in str(exc.value)
    assert "JWT_SIGNING_KEY is missing" in str(exc.value)


def test_development_generates_secrets_once_and_keeps_them(tmp_path):
    settings = load_settings(environ={"ORDERPROCESSING_INSTANCE_PATH": str(tmp_path)})
    first = load_secrets(settings)
    second = load_secrets(settings)
    assert len(first["SECRET_KEY"]) >= 32
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert oct((tmp_path / "secrets.json").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("process", ["flask", "gunicorn", "worker", "scheduler"])
def test_each_process_refuses_production_without_secrets_in_one_line_not_a_traceback(
    tmp_path, process
):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.servers import ROOT, free_port

    bin_dir = Path(sys.executable).parent
    argv = {
        "flask": [str(bin_dir / "flask"), "--app", "wsgi", "routes"],
        "gunicorn": [str(bin_dir / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
        "worker": [sys.executable, "-m", "worker", "--burst"],
        "scheduler": [sys.executable, "-m", "worker.scheduler"],
    }[process]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ORDERPROCESSING_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({
        "ORDERPROCESSING_ENV": "production",
        "ORDERPROCESSING_INSTANCE_PATH": str(tmp_path),
        "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
    })
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "error: refusing to start in production: SECRET_KEY is missing" in output, output
    assert "Traceback" not in output, output
