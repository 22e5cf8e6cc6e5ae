"""The time budget of one ship (``ship(..., timeout=…)``), handed down to every step.

One ``Deadline`` is made when a ship starts; the push, the pull and the health gate each take
what is left of it, so ``timeout`` bounds the whole ship rather than each step in turn.
"""

from __future__ import annotations

import time

from cloudship.errors import ShipTimeoutError

#: seconds ``ship()`` and ``rollback()`` wait by default (``timeout=``)
DEFAULT_TIMEOUT = 300.0


class Deadline:
    """A point in (monotonic) time a ship must finish by."""

    def __init__(self, seconds: float, *, started: float | None = None) -> None:
        self.seconds = seconds
        self._at = (time.monotonic() if started is None else started) + seconds

    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self._at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._at

    def check(self, what: str) -> None:
        """Raise ``ShipTimeoutError`` naming ``what`` when no time is left."""
        if self.expired:
            raise self.error(what)

    def error(self, what: str) -> ShipTimeoutError:
        return ShipTimeoutError(
            f"{what} did not finish within the ship's timeout of {self.seconds:.0f} s",
            fix="check that the registry and the engine answer; pass a larger timeout= "
            "(--timeout) if the step is just slow",
        )


__all__ = ["Deadline"]
