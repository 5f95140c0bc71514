"""Secrets: from HashiCorp Vault KV v2 (hvac) when configured, else settings, else generated.

Values are held in memory only: never written to logs, and written to disk only in development,
where missing secrets are generated once into instance/secrets.json (mode 0600).
"""

from __future__ import annotations

import json
import logging
import os
import secrets as pysecrets
from pathlib import Path
from typing import Any

from config import SECRET_NAMES, ConfigError

log = logging.getLogger(__name__)

# Minimum length of each secret in production; shorter ones are refused at start-up.
MIN_SECRET_LENGTH = {"SECRET_KEY": 32, "JWT_SIGNING_KEY": 32, "WEBHOOK_MASTER_KEY": 32}
KNOWN_WEAK = {"changeme", "secret", "password", "dev", "development", "test"}
VAULT_KEYS = {name: name.lower() for name in SECRET_NAMES}


def vault_client(settings: dict[str, Any]):
    """An authenticated hvac client (token or AppRole)."""
    import hvac

    client = hvac.Client(url=settings["VAULT_ADDR"], timeout=5)
    if settings.get("VAULT_TOKEN"):
        client.token = settings["VAULT_TOKEN"]
    elif settings.get("VAULT_ROLE_ID") and settings.get("VAULT_SECRET_ID"):
        login = client.auth.approle.login(
            role_id=settings["VAULT_ROLE_ID"], secret_id=settings["VAULT_SECRET_ID"]
        )
        client.token = login["auth"]["client_token"]
    else:
        raise ConfigError(
            "ORDERPROCESSING_VAULT_ADDR is set but neither ORDERPROCESSING_VAULT_TOKEN nor "
            "ORDERPROCESSING_VAULT_ROLE_ID + ORDERPROCESSING_VAULT_SECRET_ID is"
        )
    return client


def read_vault_secrets(settings: dict[str, Any]) -> tuple[dict[str, str], int | None]:
    """The secrets stored at VAULT_MOUNT/VAULT_PATH (KV v2) and the version read."""
    import hvac.exceptions
    import requests

    try:
        client = vault_client(settings)
        response = client.secrets.kv.v2.read_secret_version(
            path=settings["VAULT_PATH"],
            mount_point=settings["VAULT_MOUNT"],
            raise_on_deleted_version=True,
        )
    except (hvac.exceptions.VaultError, requests.RequestException) as exc:
        raise ConfigError(
            f"cannot read secrets from Vault at {settings['VAULT_ADDR']} "
            f"({settings['VAULT_MOUNT']}/{settings['VAULT_PATH']}): {type(exc).__name__}"
        ) from None
    data = response["data"]["data"]
    version = response["data"]["metadata"].get("version")
    found = {
        name: str(data[key]) for name, key in VAULT_KEYS.items() if data.get(key) not in (None, "")
    }
    # Extra keys (e.g. previous JWT keys kept for rotation) travel along under their own names.
    for key, value in data.items():
        if key.upper() not in found and key not in VAULT_KEYS.values():
            found[key.upper()] = value
    return found, version


def _dev_secrets_file(settings: dict[str, Any]) -> Path:
    return Path(settings["INSTANCE_PATH"]) / "secrets.json"


def _generated_dev_secrets(settings: dict[str, Any]) -> dict[str, str]:
    """Secrets generated once for development, kept in instance/secrets.json (mode 0600)."""
    path = _dev_secrets_file(settings)
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    missing = [n for n in MIN_SECRET_LENGTH if not stored.get(n)]
    if missing:
        for name in missing:
            stored[name] = pysecrets.token_urlsafe(48)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
    return stored


def validate_secrets(values: dict[str, Any]) -> None:
    """Refuse missing or weak secrets with a message that names each one."""
    problems = []
    for name, minimum in MIN_SECRET_LENGTH.items():
        value = values.get(name) or ""
        if not value:
            problems.append(f"{name} is missing")
        elif len(value) < minimum or value.lower() in KNOWN_WEAK:
            problems.append(f"{name} is too weak (at least {minimum} random characters)")
    if problems:
        raise ConfigError(
            "refusing to start in production: "
            + "; ".join(problems)
            + ". Set them in Vault (ORDERPROCESSING_VAULT_ADDR) or as ORDERPROCESSING_<NAME>."
        )


def load_secrets(settings: dict[str, Any]) -> dict[str, Any]:
    """Resolve every secret and return the settings with them filled in (a new dict)."""
    resolved = dict(settings)
    if settings.get("VAULT_ADDR"):
        from_vault, version = read_vault_secrets(settings)
        for name, value in from_vault.items():
            if name in SECRET_NAMES and settings.get(name):
                continue  # an explicit setting beats Vault (useful for break-glass overrides)
            resolved[name] = value
        resolved["SECRETS_SOURCE"] = "vault"
        resolved["SECRETS_VERSION"] = version
    else:
        resolved["SECRETS_SOURCE"] = "settings"
    if settings["ENV"] == "production":
        validate_secrets(resolved)
    else:
        missing = [n for n in MIN_SECRET_LENGTH if not resolved.get(n)]
        if missing:
            generated = _generated_dev_secrets(settings)
            for name in missing:
                resolved[name] = generated[name]
            resolved["SECRETS_SOURCE"] += "+generated"
    return resolved
