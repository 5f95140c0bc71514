"""How a saga's steps pause for their driver, and what the driver hands back.

`services.saga.advance` is a generator of these pauses; `saga.drive_claimed` (one saga alone) and
`services.saga_batch` (several in lock-step) are its two drivers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from app.services.saga_store import SagaOrder


class Pause(enum.Enum):
    """Where a saga's steps stop for their driver (a float pause is a retry delay in seconds)."""

    COMMIT = "commit"  # commit the transaction before going on (a provider call follows)
    # A local step is next (it updates product rows): a driver of several sagas first takes
    # the product locks of all of them, in id order; a lone saga just goes on.
    LOCAL = "local"
    FINAL = "final"  # the order is final: commit (publishing its events if nobody subscribes)
    HELD = "held"  # the payment hold stopped it: commit its progress and give the lease up


@dataclass(frozen=True)
class StepCall:
    """A pause for a step's (or compensation's) own work: a provider call (made with no
    transaction open for this saga's sake) or a local step's statements.

    The driver makes it and hands back its result, or raises its error, where the steps paused.
    A lone driver just makes it; a driver of several sagas makes a round's slow provider calls
    concurrently and a round's local steps of one kind in one statement where it can.
    """

    step: str
    order: SagaOrder
    local: bool
    run: Callable[[], Any]


@dataclass
class Answer:
    """What a driver hands back to paused steps: nothing, a provider's result, or its error."""

    value: Any = None
    error: BaseException | None = None

    @classmethod
    def of(cls, call: StepCall) -> Answer:
        try:
            return cls(value=call.run())
        except Exception as error:  # noqa: BLE001 - raised again where the steps paused
            return cls(error=error)

    def resume(self, steps: Steps) -> Pause | float | StepCall:
        if self.error is not None:
            return steps.throw(self.error)
        return steps.send(self.value)


Steps = Generator["Pause | float | StepCall", Any, None]
