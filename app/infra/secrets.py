"""Secrets: from HashiCorp Vault KV v2 (hvac) when configured, else settings, else generated.

Values are held in memory only: never written to logs, and written to disk only in development,
where missing secrets are generated once into instance/secrets.json (mode 0600).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets as pysecrets
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from config import SECRET_NAMES, ConfigError

log = logging.getLogger(__name__)

# Minimum length of each secret in production; shorter ones are refused at start-up.
MIN_SECRET_LENGTH = {"SECRET_KEY": 32, "JWT_SIGNING_KEY": 32, "WEBHOOK_MASTER_KEY": 32}
KNOWN_WEAK = {"changeme", "secret", "password", "dev", "development", "test"}
MIN_DISTINCT_CHARACTERS = 8
# Placeholder words refused anywhere in a production secret, compared in lower case with every
# character but letters and digits removed ("Not_For-Production" -> "notforproduction"). Each is
# six or more characters, so these and the tokens below refuse a random token_urlsafe(48) by
# chance about once in a million draws.
PLACEHOLDER_WORDS = (
    "changeme", "changeit", "replaceme", "secretkey", "devsecret", "notforprod", "development",
    "example", "placeholder", "password", "passwd", "default", "insecure", "sample", "letmein",
    "qwerty", "donotuse",
)
# Placeholder words refused as a whole word between separators ("test-secret-key-...", "demo_1").
PLACEHOLDER_TOKENS = frozenset(
    {"test", "tests", "testing", "demo", "dummy", "fake", "fixme", "todo"}
)
# zlib must not shrink a secret below this share of its length: random text of any alphabet stays
# above 0.7; "kkkk...k-strong-1" or a placeholder repeated to 32 characters falls far below.
MIN_COMPRESSED_RATIO = 0.5
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


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    compact = re.sub(r"[^a-z0-9]", "", lowered)
    tokens = set(re.split(r"[^a-z0-9]+", lowered))
    return (
        lowered in KNOWN_WEAK
        or any(word in compact for word in PLACEHOLDER_WORDS)
        or not tokens.isdisjoint(PLACEHOLDER_TOKENS)
    )


def _shortest_period(value: str) -> int:
    """The shortest p with value[i] == value[i + p] throughout ("abcabca" -> 3), by KMP."""
    prefix = [0] * len(value)
    for i in range(1, len(value)):
        k = prefix[i - 1]
        while k and value[i] != value[k]:
            k = prefix[k - 1]
        prefix[i] = k + (value[i] == value[k])
    return len(value) - (prefix[-1] if value else 0)


def _compressed_ratio(value: str) -> float:
    data = value.encode()
    return (len(zlib.compress(data, 9)) - len(zlib.compress(b"", 9))) / len(data)


def secret_weaknesses(value: str, minimum: int) -> list[str]:
    """Why a production secret is weak (empty when it is not); never quotes the value."""
    reasons = []
    if len(value) < minimum:
        reasons.append(f"shorter than {minimum} characters")
    if _is_placeholder(value):
        reasons.append("contains a placeholder word")
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:  # "aaaa...": long, but no secret
        reasons.append(f"fewer than {MIN_DISTINCT_CHARACTERS} different characters")
    elif _shortest_period(value) <= len(value) // 2:  # "changeme-changeme-changeme-changeme"
        reasons.append("repeats a short sequence")
    elif _compressed_ratio(value) < MIN_COMPRESSED_RATIO:  # "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk-v1"
        reasons.append("too repetitive (compresses to less than half its length)")
    return reasons


def validate_secrets(values: dict[str, Any]) -> None:
    """Refuse missing, weak or shared secrets with a message that names each one (not its value).

    Called in production only: development generates its secrets, the test suite uses fixed ones.
    """
    problems = []
    for name, minimum in MIN_SECRET_LENGTH.items():
        value = values.get(name) or ""
        if not value:
            problems.append(f"{name} is missing")
        elif reasons := secret_weaknesses(value, minimum):
            problems.append(f"{name} is too weak: {', '.join(reasons)} "
                            f"(use at least {minimum} random characters)")
    names = list(MIN_SECRET_LENGTH)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            a, b = sorted([values.get(first) or "", values.get(second) or ""], key=len)
            # The same value, or one built from the other ("<SECRET_KEY>-jwt"); a short value
            # inside a long one is reported as too short above, not as shared.
            if a and (a == b or (len(a) >= MIN_SECRET_LENGTH[first] and a in b)):
                problems.append(f"{first} and {second} share one value (each needs its own)")
    if problems:
        raise ConfigError(
            "refusing to start in production: "
            + "; ".join(problems)
            + ". Set them in Vault (ORDERPROCESSING_VAULT_ADDR) or as ORDERPROCESSING_<NAME>, each "
            "e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(48))'."
        )


def load_secrets(settings: dict[str, Any]) -> dict[str, Any]:
    """Resolve every secret and return the settings with them filled in (a new dict)."""
    resolved = dict(settings)
    if settings.get("VAULT_ADDR"):
        from_vault, version = read_vault_secrets(settings)
        pinned = [name for name in SECRET_NAMES if settings.get(name)]
        for name, value in from_vault.items():
            if name in pinned:
                continue  # an explicit setting beats Vault (useful for break-glass overrides)
            resolved[name] = value
        resolved["SECRETS_SOURCE"] = "vault"
        resolved["SECRETS_VERSION"] = version
        resolved["SECRETS_PINNED"] = pinned
        resolved["JWT_PREVIOUS_SIGNING_KEYS"] = previous_keys(
            from_vault.get("JWT_PREVIOUS_SIGNING_KEYS")
        )
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


# --- rotation: Vault is re-read every VAULT_REFRESH_SECONDS when its KV version changes ---

# Applied at once on rotation (the database password by new connections: see
# infra.database.password_from_config). The webhook master key needs a restart: the webhook
# secrets stored under it must be re-encrypted first, or deliveries could no longer sign.
LIVE_SECRETS = ("SECRET_KEY", "JWT_SIGNING_KEY", "DATABASE_PASSWORD")


def previous_keys(value: Any) -> list[str]:
    """Previous JWT keys from Vault: a list, or one string of comma-separated keys."""
    if not value:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def current_vault_version(settings: dict[str, Any]) -> int | None:
    """The KV v2 version of our secret, read from its metadata (no secret values)."""
    import hvac.exceptions
    import requests

    try:
        metadata = vault_client(settings).secrets.kv.v2.read_secret_metadata(
            path=settings["VAULT_PATH"], mount_point=settings["VAULT_MOUNT"]
        )
    except (hvac.exceptions.VaultError, requests.RequestException) as exc:
        raise ConfigError(f"cannot read secret metadata from Vault: {type(exc).__name__}") from None
    return metadata["data"].get("current_version")


class WeakRotation(Exception):
    """A new secret version in Vault that production's rules refuse (names, never values)."""


class SecretRefresher:
    """Keeps one process's secrets in step with Vault.

    A rotated JWT signing key becomes the signing key at once; the key it replaces stays valid for
    verification for JWT_TTL_SECONDS (every token it signed has expired by then), on top of the
    previous keys Vault itself lists for processes that start after the rotation. A rotated
    SECRET_KEY keeps the old one as a fallback, so sessions and CSRF tokens survive the change.
    """

    def __init__(self, config: dict[str, Any], clock=time.time):
        self.config = config
        self.clock = clock
        self.next_check = clock() + config["VAULT_REFRESH_SECONDS"]
        self.retired: dict[str, float] = {}  # old JWT key -> when it stops being accepted
        self.vault_previous = list(config.get("JWT_PREVIOUS_SIGNING_KEYS") or [])
        self.lock = threading.Lock()
        self.refused_version: int | None = None

    def _refuse_weak(self, found: dict[str, Any], version: int | None) -> None:
        """In production a rotation is held to the start-up rules (validate_secrets): a weak or
        shared new value would otherwise slip in at runtime, where start-up would refuse it."""
        if self.config.get("ENV") != "production":
            return
        pinned = self.config.get("SECRETS_PINNED") or []
        candidate = {
            name: found[name] if found.get(name) and name not in pinned else self.config.get(name)
            for name in MIN_SECRET_LENGTH
        }
        try:
            validate_secrets(candidate)
        except ConfigError as exc:
            raise WeakRotation(str(exc).removeprefix("refusing to start in production: ")) from None

    def maybe_refresh(self) -> bool:
        """Check Vault if VAULT_REFRESH_SECONDS passed; True when new secrets were applied."""
        now = self.clock()
        if now < self.next_check or not self.lock.acquire(blocking=False):
            return False
        try:
            self.next_check = now + self.config["VAULT_REFRESH_SECONDS"]
            try:
                version = current_vault_version(self.config)
                if version == self.config.get("SECRETS_VERSION"):
                    self._expire_retired(now)
                    return False
                found, version = read_vault_secrets(self.config)
                self._refuse_weak(found, version)
            except ConfigError as exc:
                log.warning("secret refresh skipped; keeping the current secrets: %s", exc)
                return False
            except WeakRotation as exc:
                if self.refused_version != version:  # once per version, not every check
                    log.error("rotated secrets refused; keeping the current secrets: %s", exc,
                              extra={"version": version})
                    self.refused_version = version
                return False
            self.apply(found, version, now)
            return True
        finally:
            self.lock.release()

    def apply(self, found: dict[str, Any], version: int | None, now: float) -> None:
        """Take a new secret version into this process's config."""
        config = self.config
        pinned = config.get("SECRETS_PINNED") or []
        changed = []
        for name in LIVE_SECRETS:
            value = found.get(name)
            if name in pinned or not value or value == config.get(name):
                continue
            if name == "JWT_SIGNING_KEY":
                self.retired[config[name]] = now + config["JWT_TTL_SECONDS"]
            elif name == "SECRET_KEY":
                config["SECRET_KEY_FALLBACKS"] = [config[name]]
            config[name] = value
            changed.append(name)
        for name in set(SECRET_NAMES) - set(LIVE_SECRETS):
            if found.get(name) and found[name] != config.get(name) and name not in pinned:
                log.warning("secret changed in Vault; it takes effect at the next restart",
                            extra={"secret": name})
        self.vault_previous = previous_keys(found.get("JWT_PREVIOUS_SIGNING_KEYS"))
        config["SECRETS_VERSION"] = version
        self._expire_retired(now)
        log.info("secrets refreshed from Vault", extra={"version": version, "changed": changed})

    def _expire_retired(self, now: float) -> None:
        self.retired = {key: until for key, until in self.retired.items() if until > now}
        keys = [
            k for k in [*self.vault_previous, *self.retired] if k != self.config["JWT_SIGNING_KEY"]
        ]
        self.config["JWT_PREVIOUS_SIGNING_KEYS"] = list(dict.fromkeys(keys))


def rotate_jwt_signing_key(settings: dict[str, Any], force: bool = False) -> tuple[str, str]:
    """Write a new JWT signing key to Vault, listing the current one as previous.

    Returns (new key id, old key id). Refused within JWT_TTL_SECONDS of the last rotation unless
    forced: the key before the previous one would be dropped while tokens it signed still live.
    """
    from app.auth.principals import key_id_for

    client = vault_client(settings)
    kv = client.secrets.kv.v2
    current = kv.read_secret_version(
        path=settings["VAULT_PATH"], mount_point=settings["VAULT_MOUNT"],
        raise_on_deleted_version=True,
    )["data"]["data"]
    last = float(current.get("jwt_rotated_at") or 0)
    if not force and time.time() - last < settings["JWT_TTL_SECONDS"]:
        raise ConfigError(
            "the JWT key was rotated less than JWT_TTL_SECONDS ago; tokens signed with the key "
            "before it are still valid. Wait, or pass --force to cut them off."
        )
    old = current.get("jwt_signing_key") or settings["JWT_SIGNING_KEY"]
    new = pysecrets.token_urlsafe(48)
    updated = {
        **current, "jwt_signing_key": new, "jwt_previous_signing_keys": [old],
        "jwt_rotated_at": str(int(time.time())),
    }
    kv.create_or_update_secret(
        path=settings["VAULT_PATH"], secret=updated, mount_point=settings["VAULT_MOUNT"]
    )
    return key_id_for(new), key_id_for(old)
