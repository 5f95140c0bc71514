"""Secrets from a real Vault-compatible server (KV v2 via hvac), and production refusals."""

import base64
import random
import secrets

import pytest

from app.infra.secrets import load_secrets
from config import CONFIG_ERROR_EXIT_CODE, ConfigError, load_settings

STRONG = {
    "secret_key": secrets.token_urlsafe(48),
    "jwt_signing_key": secrets.token_urlsafe(48),
    "webhook_master_key": secrets.token_urlsafe(48),
    "database_password": "db-password-from-vault",
}
STRONG_SETTINGS = {name.upper(): value for name, value in STRONG.items()}


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
    assert resolved["SECRET_KEY"] == STRONG["secret_key"]
    assert resolved["JWT_SIGNING_KEY"] == STRONG["jwt_signing_key"]
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
    assert load_secrets(settings)["JWT_SIGNING_KEY"] == STRONG["jwt_signing_key"]


@pytest.mark.parametrize("weak", ["short", "a" * 64, "Password"])
def test_production_refuses_short_repetitive_or_placeholder_secrets(tmp_path, weak):
    from app.infra.secrets import validate_secrets

    strong = {"SECRET_KEY": STRONG["secret_key"], "JWT_SIGNING_KEY": STRONG["jwt_signing_key"],
              "WEBHOOK_MASTER_KEY": STRONG["webhook_master_key"]}
    validate_secrets(strong)  # passes
    with pytest.raises(ConfigError, match="SECRET_KEY is too weak"):
        validate_secrets({**strong, "SECRET_KEY": weak})


# Weak values that are long enough and have 8+ different characters, so only the placeholder,
# repetition and reuse checks catch them (the ids say which).
WEAK_LONG_ENOUGH = {
    "repeated-placeholder": "changeme-changeme-changeme-changeme",
    "placeholder-phrase": "development-secret-key-not-for-production",
    "placeholder-in-caps": "CHANGE_ME_" + secrets.token_urlsafe(32),
    "placeholder-example": "example-" + secrets.token_urlsafe(32),
    "placeholder-password": "Password1!" + secrets.token_urlsafe(32),
    "test-prefix": "test-secret-key-" + "s" * 40,  # tests/conftest.py's, fine under ENV=testing
    "short-period": "abcdefgh" * 6,
    "short-period-unaligned": "x7Q!pZ2m-" * 5 + "x7",
    "low-compression": "k" * 40 + "-strong-1",
}


@pytest.mark.parametrize("weak", list(WEAK_LONG_ENOUGH.values()), ids=list(WEAK_LONG_ENOUGH))
@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SIGNING_KEY", "WEBHOOK_MASTER_KEY"])
def test_production_refuses_placeholder_and_repetitive_secrets_without_showing_them(name, weak):
    from app.infra.secrets import MIN_SECRET_LENGTH, validate_secrets

    assert len(weak) >= MIN_SECRET_LENGTH[name] and len(set(weak)) >= 8  # the old checks passed
    with pytest.raises(ConfigError, match=f"{name} is too weak: ") as refused:
        validate_secrets({**STRONG_SETTINGS, name: weak})
    message = str(refused.value)
    assert weak not in message
    assert all(other not in message for other in STRONG_SETTINGS.values())
    assert not any(f"{other} is" in message for other in MIN_SECRET_LENGTH if other != name)


@pytest.mark.parametrize("weak, reason", [
    ("changeme-changeme-changeme-changeme", "repeats a short sequence"),
    ("development-secret-key-not-for-production", "contains a placeholder word"),
    ("k" * 40 + "-strong-1", "too repetitive"),
])
def test_weak_secret_message_gives_the_reason(weak, reason):
    from app.infra.secrets import validate_secrets

    with pytest.raises(ConfigError, match=f"SECRET_KEY is too weak: [^;]*{reason}"):
        validate_secrets({**STRONG_SETTINGS, "SECRET_KEY": weak})


@pytest.mark.parametrize("first, second", [
    ("SECRET_KEY", "JWT_SIGNING_KEY"),
    ("SECRET_KEY", "WEBHOOK_MASTER_KEY"),
    ("JWT_SIGNING_KEY", "WEBHOOK_MASTER_KEY"),
])
def test_production_refuses_one_value_for_two_secrets(first, second):
    from app.infra.secrets import validate_secrets

    shared = secrets.token_urlsafe(48)
    for reused in (shared, shared + "-jwt"):  # the same value, or one built from the other
        with pytest.raises(ConfigError, match=f"{first} and {second} share one value") as refused:
            validate_secrets({**STRONG_SETTINGS, first: shared, second: reused})
        assert shared not in str(refused.value)
        assert "too weak" not in str(refused.value)


def test_one_value_for_all_three_secrets_names_every_pair():
    from app.infra.secrets import validate_secrets

    shared = secrets.token_urlsafe(48)
    with pytest.raises(ConfigError) as refused:
        validate_secrets(dict.fromkeys(["SECRET_KEY", "JWT_SIGNING_KEY", "WEBHOOK_MASTER_KEY"],
                                       shared))
    message = str(refused.value)
    assert "SECRET_KEY and JWT_SIGNING_KEY share one value" in message
    assert "SECRET_KEY and WEBHOOK_MASTER_KEY share one value" in message
    assert "JWT_SIGNING_KEY and WEBHOOK_MASTER_KEY share one value" in message
    assert shared not in message


def test_a_random_secret_passes():
    from app.infra.secrets import validate_secrets

    validate_secrets({"SECRET_KEY": secrets.token_urlsafe(48),
                      "JWT_SIGNING_KEY": secrets.token_urlsafe(48),
                      "WEBHOOK_MASTER_KEY": secrets.token_urlsafe(48)})


@pytest.mark.parametrize("encode", [
    lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="),  # token_urlsafe's alphabet
    lambda raw: raw.hex(),  # token_hex's
    lambda raw: base64.b64encode(raw).decode(),  # docker-compose's vault-init
], ids=["urlsafe", "hex", "base64"])
@pytest.mark.parametrize("size", [16, 24, 48])  # urlsafe 24 and hex 16 give exactly 32 characters
def test_many_random_secrets_pass(encode, size):
    """Random values of each alphabet and size pass (seeded, so a rare chance hit cannot flake)."""
    from app.infra.secrets import MIN_SECRET_LENGTH, secret_weaknesses

    rng = random.Random(f"{size}-{encode(bytes(4))}")
    for _ in range(2000):
        value = encode(rng.randbytes(size))
        if len(value) >= MIN_SECRET_LENGTH["SECRET_KEY"]:
            assert secret_weaknesses(value, MIN_SECRET_LENGTH["SECRET_KEY"]) == [], value


def test_weak_secrets_are_refused_in_production_only(tmp_path):
    from tests.conftest import TEST_SECRETS

    def settings(env):
        return load_settings(environ={
            "ORDERPROCESSING_ENV": env,
            "ORDERPROCESSING_INSTANCE_PATH": str(tmp_path),
            **{f"ORDERPROCESSING_{name}": value for name, value in TEST_SECRETS.items()},
        })

    assert load_secrets(settings("testing"))["SECRET_KEY"] == TEST_SECRETS["SECRET_KEY"]
    assert load_secrets(settings("development"))["SECRET_KEY"] == TEST_SECRETS["SECRET_KEY"]
    with pytest.raises(ConfigError, match="SECRET_KEY is too weak: contains a placeholder word"):
        load_secrets(settings("production"))


def test_production_refuses_weak_secrets_from_vault(vault, tmp_path):
    vault.client().secrets.kv.v2.create_or_update_secret(
        path="orderprocessing-test",
        secret={**STRONG, "jwt_signing_key": "short"},
        mount_point="secret",
    )
    with pytest.raises(ConfigError, match="JWT_SIGNING_KEY is too weak"):
        load_secrets(settings_for(vault, tmp_path))


def test_production_refuses_placeholder_or_shared_secrets_from_vault(vault, tmp_path):
    vault.client().secrets.kv.v2.create_or_update_secret(
        path="orderprocessing-test",
        secret={**STRONG, "webhook_master_key": "changeme-changeme-changeme-changeme",
                "jwt_signing_key": STRONG["secret_key"]},
        mount_point="secret",
    )
    with pytest.raises(ConfigError) as refused:
        load_secrets(settings_for(vault, tmp_path))
    message = str(refused.value)
    assert "WEBHOOK_MASTER_KEY is too weak: " in message
    assert "SECRET_KEY and JWT_SIGNING_KEY share one value" in message
    assert STRONG["secret_key"] not in message and "changeme" not in message


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


@pytest.mark.parametrize("process, weak", [
    ("flask", {"SECRET_KEY": "changeme-changeme-changeme-changeme"}),
    ("flask", {"JWT_SIGNING_KEY": "development-secret-key-not-for-production"}),
    ("flask", {"WEBHOOK_MASTER_KEY": STRONG["secret_key"]}),  # the same as SECRET_KEY
    ("gunicorn", {"SECRET_KEY": "changeme-changeme-changeme-changeme"}),
], ids=["flask-repeated", "flask-placeholder", "flask-shared", "gunicorn-repeated"])
def test_each_process_refuses_weak_production_secrets_with_exit_code_3(tmp_path, process, weak):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.servers import ROOT, free_port

    bin_dir = Path(sys.executable).parent
    argv = {
        "flask": [str(bin_dir / "flask"), "--app", "wsgi", "routes"],
        "gunicorn": [str(bin_dir / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
    }[process]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ORDERPROCESSING_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({
        "ORDERPROCESSING_ENV": "production",
        "ORDERPROCESSING_INSTANCE_PATH": str(tmp_path),
        "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
        **{f"ORDERPROCESSING_{name}": value for name, value in STRONG_SETTINGS.items()},
        **{f"ORDERPROCESSING_{name}": value for name, value in weak.items()},
    })
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == CONFIG_ERROR_EXIT_CODE == 3, output
    assert "error: refusing to start in production: " in output, output
    (name, value), = weak.items()
    assert f"{name} is too weak: " in output or f"and {name} share one value" in output, output
    assert value not in output, output
    assert "Traceback" not in output, output
