"""The HTTP health probe every runtime uses to gate a deploy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeResult:
    healthy: bool
    reason: str
    attempts: int


def wait_healthy(
    url: str,
    *,
    timeout: float,
    check_alive: Callable[[], str | None] = lambda: None,
    interval: float = 0.25,
    first_interval: float = 0.02,
    request_timeout: float = 2.0,
) -> ProbeResult:
    """Poll ``url`` until it answers below HTTP 400, ``timeout`` passes, or ``check_alive``
    returns a reason the app can no longer come up (e.g. "container exited with code 1").

    Failing fast on ``check_alive`` is what keeps a crash-looping app from costing the whole
    timeout. The wait between attempts starts at ``first_interval`` and doubles up to
    ``interval``: most apps answer within a few hundred ms of starting, and a fixed 0.25 s
    step would add up to that much to every deploy.
    """
    import httpx

    deadline = time.monotonic() + timeout
    pause = min(first_interval, interval)
    attempts = 0
    last = "no answer yet"
    from cloudship.distribution import system_ssl_context

    with httpx.Client(
        timeout=request_timeout, follow_redirects=False, verify=system_ssl_context()
    ) as client:
        while True:
            attempts += 1
            try:
                status = client.get(url).status_code
                if status < 400:
                    return ProbeResult(True, f"HTTP {status}", attempts)
                last = f"HTTP {status}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            dead = check_alive()
            if dead:
                return ProbeResult(False, dead, attempts)
            if time.monotonic() >= deadline:
                return ProbeResult(
                    False, f"no healthy answer within {timeout:.0f} s ({last})", attempts
                )
            time.sleep(pause)
            pause = min(pause * 2, interval)
