"""HTTP 429 handling shared by every registry and registry API client.

A 429 is retried after the server's ``Retry-After`` (seconds or an HTTP date), a few times,
then reported as a ``RegistryError`` that says when to try again. tenacity does the retrying.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cloudship.errors import RegistryError

if TYPE_CHECKING:
    import httpx

DEFAULT_ATTEMPTS = 3
MAX_WAIT = 60.0


class RateLimited(Exception):
    """One 429 answer, with how long the server asked us to wait."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after:.0f} s")
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """``Retry-After`` as seconds from now; ``default`` when absent or unreadable."""
    if not value:
        return default
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def with_rate_limit_retries(
    send: Callable[[], httpx.Response],
    *,
    what: str,
    attempts: int = DEFAULT_ATTEMPTS,
    max_wait: float = MAX_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """Call ``send`` until it answers something other than 429, honouring ``Retry-After``."""
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt

    def wait(state: object) -> float:
        outcome = getattr(state, "outcome", None)
        exc = outcome.exception() if outcome is not None else None
        return min(exc.retry_after, max_wait) if isinstance(exc, RateLimited) else 1.0

    def attempt() -> httpx.Response:
        response = send()
        if response.status_code == 429:
            raise RateLimited(retry_after_seconds(response.headers.get("Retry-After")))
        return response

    try:
        for tried in Retrying(
            retry=retry_if_exception_type(RateLimited),
            stop=stop_after_attempt(attempts),
            wait=wait,
            sleep=sleep,
        ):
            with tried:
                return attempt()
    except RetryError as exc:
        last = exc.last_attempt.exception()
        after = last.retry_after if isinstance(last, RateLimited) else 0.0
        raise RegistryError(
            f"{what}: rate limited (HTTP 429) {attempts} times in a row; the server asks to "
            f"wait {after:.0f} s more",
            fix="wait and ship again; on Docker Hub, authenticated or paid accounts have higher "
            "pull limits",
        ) from None
    raise AssertionError("unreachable: tenacity either returns or raises")
