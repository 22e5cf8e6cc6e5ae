"""The HTTP health probe every runtime uses to gate a deploy.

The probe keeps a tally of what the app answered (``HTTP 503``, ``connection refused``, …), so
a gate that fails says what it saw, and it reports progress while it waits.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class ProbeResult:
    healthy: bool
    reason: str
    attempts: int
    #: every answer (or failure to answer) and how often it came
    answers: dict[str, int] = field(default_factory=dict)


def describe(exc: httpx.HTTPError, request_timeout: float) -> str:
    """A failed attempt in words a user knows."""
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {request_timeout:g} s"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed without an answer"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "connection reset"
    return type(exc).__name__


def tally(answers: Counter[str]) -> str:
    """``"12 x HTTP 503, 3 x connection refused"``, most frequent first."""
    return ", ".join(f"{count} x {what}" for what, count in answers.most_common())


def wait_healthy(
    url: str,
    *,
    timeout: float,
    check_alive: Callable[[], str | None] = lambda: None,
    interval: float = 0.25,
    first_interval: float = 0.02,
    fast_for: float = 0.0,
    alive_every: float = 0.0,
    request_timeout: float = 2.0,
    on_progress: Callable[[str], None] | None = None,
    progress_every: float = 2.0,
) -> ProbeResult:
    """Poll ``url`` until it answers below HTTP 400, ``timeout`` passes, or ``check_alive``
    returns a reason the app can no longer come up (e.g. "container exited with code 1").

    Failing fast on ``check_alive`` is what keeps a crash-looping app from costing the whole
    timeout. The wait between attempts starts at ``first_interval`` and doubles up to
    ``interval``: most apps answer within a few hundred ms of starting, and a fixed 0.25 s
    step would add up to that much to every deploy. With ``fast_for``, the wait stays at
    ``first_interval`` for that many seconds first (an app on this machine: a refused
    connection costs well under a millisecond, and each doubling step could overshoot the
    moment the app comes up by as much as the step). ``check_alive`` runs at most every
    ``alive_every`` seconds (it may be an engine request). ``on_progress`` is called about
    every ``progress_every`` seconds with what the app has answered so far.
    """
    import httpx

    from cloudship.distribution import system_ssl_context

    started = time.monotonic()
    deadline = started + timeout
    next_report = started + progress_every
    pause = min(first_interval, interval)
    fast_until = started + fast_for
    next_alive_check = started
    answers: Counter[str] = Counter()
    last = "no answer yet"
    with httpx.Client(
        timeout=request_timeout, follow_redirects=False, verify=system_ssl_context()
    ) as client:
        while True:
            try:
                status = client.get(url).status_code
                last = f"HTTP {status}"
                answers[last] += 1
                if status < 400:
                    return ProbeResult(True, last, answers.total(), dict(answers))
            except httpx.HTTPError as exc:
                last = describe(exc, request_timeout)
                answers[last] += 1
            now = time.monotonic()
            dead = None
            if now >= next_alive_check:
                dead = check_alive()
                next_alive_check = now + alive_every
            if dead:
                return ProbeResult(
                    False, f"{dead}; it answered {tally(answers)}", answers.total(), dict(answers)
                )
            if now >= deadline:
                return ProbeResult(
                    False,
                    f"no healthy answer within {timeout:.0f} s: {tally(answers)} (last: {last})",
                    answers.total(),
                    dict(answers),
                )
            if on_progress is not None and now >= next_report:
                on_progress(f"{now - started:.0f} s: {tally(answers)}")
                next_report = now + progress_every
            time.sleep(min(pause, max(0.0, deadline - now)))
            if now >= fast_until:
                pause = min(pause * 2, interval)
