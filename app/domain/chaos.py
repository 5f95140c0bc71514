"""Chaos-drill knobs: injected failure rate and latency per simulated provider (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.errors import FieldError, ValidationFailed

PROVIDERS = ("payment", "shipping")
MAX_LATENCY_MS = 30_000


@dataclass(frozen=True)
class Knob:
    name: str
    kind: type  # float | int
    low: float
    high: float
    description: str


KNOBS = {
    knob.name: knob
    for provider in PROVIDERS
    for knob in (
        Knob(f"{provider}_failure_rate", float, 0.0, 1.0,
             f"share of {provider} calls failing with a transient error (0 to 1)"),
        Knob(f"{provider}_latency_ms", int, 0, MAX_LATENCY_MS,
             f"extra milliseconds added to each {provider} call"),
    )
}
DEFAULTS = {name: knob.kind(0) for name, knob in KNOBS.items()}


def validate_changes(changes: dict[str, object]) -> dict[str, float | int]:
    """The changes as typed values; ValidationFailed naming each bad or unknown knob."""
    errors, clean = [], {}
    for name, raw in changes.items():
        knob = KNOBS.get(name)
        if knob is None:
            errors.append(FieldError(name, "unknown setting"))
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            errors.append(FieldError(name, "must be a number"))
            continue
        try:
            value = knob.kind(float(raw)) if knob.kind is int else float(raw)
        except ValueError:
            errors.append(FieldError(name, "must be a number"))
            continue
        if knob.kind is int and float(raw) != int(float(raw)):
            errors.append(FieldError(name, "must be a whole number"))
        elif not knob.low <= value <= knob.high:
            errors.append(FieldError(name, f"must be between {knob.low:g} and {knob.high:g}"))
        else:
            clean[name] = value
    if errors:
        raise ValidationFailed(errors)
    return clean
