"""Feature flag rules: types and the stable per-merchant rollout decision (pure Python)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

FLAG_TYPES = ("release", "operational", "kill_switch")


@dataclass(frozen=True)
class FlagState:
    """What a process needs to answer "is this flag on for that merchant?"."""

    name: str
    enabled: bool
    rollout_percentage: int = 100
    overrides: dict[str, bool] = field(default_factory=dict)


def rollout_bucket(flag_name: str, merchant_id: str) -> int:
    """0-99, fixed for a flag and merchant: raising the percentage only ever adds merchants."""
    digest = hashlib.sha256(f"{flag_name}:{merchant_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def flag_is_on(flag: FlagState | None, merchant_id: str | None = None) -> bool:
    """Overrides win; otherwise on when enabled and the merchant falls inside the rollout."""
    if flag is None:
        return False
    if merchant_id is not None and merchant_id in flag.overrides:
        return bool(flag.overrides[merchant_id])
    if not flag.enabled:
        return False
    if flag.rollout_percentage >= 100:
        return True
    if merchant_id is None:
        # No merchant to bucket (a global check): only a full rollout counts as on.
        return False
    return rollout_bucket(flag.name, merchant_id) < flag.rollout_percentage
