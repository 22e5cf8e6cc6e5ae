"""HTTP 429 handling shared by every registry and registry API client.

A 429 is retried after the wait the server names, a few times, unless that wait is beyond the
budget (``max_wait``): then retrying is pointless and cloudship stops at once with a
``RegistryError`` that says when the limit resets. The wait comes from, in order:

- ``Retry-After`` (seconds or an HTTP date; RFC 9110 §10.2.3). The Hub API sends it with its
  429s (https://docs.docker.com/reference/api/hub/latest/#tag/rate-limiting, docker/docs
  PR #22916);
- ``RateLimit-Reset`` (seconds until the window resets; IETF draft-ietf-httpapi-ratelimit-headers)
  or ``X-RateLimit-Reset`` (a unix timestamp, as the Hub API documents it, same page);
- ``RateLimit-Remaining: 0;w=3600`` with no reset: the window (``w``, seconds) is the longest
  the wait can be. This is what Docker Hub's *pull* limit sends: ``ratelimit-limit`` and
  ``ratelimit-remaining`` with a window and no ``Retry-After``
  (https://docs.docker.com/docker-hub/usage/pulls/#view-pull-rate-and-limit).

The server's own message (Docker's "You have reached your pull rate limit…") is quoted in the
error. tenacity does the retrying.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cloudship.errors import RegistryError

if TYPE_CHECKING:
    import httpx

DEFAULT_ATTEMPTS = 3
#: what to do about a 429, Docker Hub's pull limit in particular
RATE_LIMIT_FIX = (
    "wait and ship again; on Docker Hub, pull limits are per account (10/hour per IP "
    "anonymous, 100/hour for Personal accounts, none for paid plans), so sign in or upgrade "
    "(https://docs.docker.com/docker-hub/usage/pulls/)"
)
MAX_WAIT = 60.0
_QUOTA = re.compile(r"^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?")
#: a ``*-Reset`` value above this is a unix timestamp, not a number of seconds
_EPOCH_THRESHOLD = 1_000_000_000


@dataclass(frozen=True)
class RateLimit:
    """What a 429 answer said about the limit; every field is optional."""

    retry_after: float | None = None
    reset_in: float | None = None
    remaining: int | None = None
    limit: int | None = None
    window: float | None = None
    message: str = ""

    @classmethod
    def from_response(cls, response: httpx.Response, *, now: float | None = None) -> RateLimit:
        return cls.from_headers(response.headers, response.content, now=now)

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str], body: bytes = b"", *, now: float | None = None
    ) -> RateLimit:
        now = time.time() if now is None else now
        lower = {key.lower(): value for key, value in headers.items()}
        remaining, window = _quota(lower.get("ratelimit-remaining"))
        limit, limit_window = _quota(lower.get("ratelimit-limit"))
        if remaining is None:
            remaining, _ = _quota(lower.get("x-ratelimit-remaining"))
        if limit is None:
            limit, _ = _quota(lower.get("x-ratelimit-limit"))
        reset = _reset(lower.get("ratelimit-reset") or lower.get("x-ratelimit-reset"), now)
        retry = lower.get("retry-after")
        return cls(
            retry_after=retry_after_seconds(retry, default=-1.0, now=now) if retry else None,
            reset_in=reset,
            remaining=remaining,
            limit=limit,
            window=window if window is not None else limit_window,
            message=_message(body),
        )

    def wait(self, default: float = 1.0) -> float:
        """Seconds to wait before the next attempt can succeed."""
        if self.retry_after is not None and self.retry_after >= 0:
            return self.retry_after
        if self.reset_in is not None:
            return self.reset_in
        if self.remaining == 0 and self.window is not None:
            return self.window
        return default

    def describe(self) -> str:
        """``100 per 3600 s, 0 left`` — the quota as the server stated it, if it did."""
        parts = []
        if self.limit is not None:
            per = f" per {self.window:.0f} s" if self.window is not None else ""
            parts.append(f"limit {self.limit}{per}")
        if self.remaining is not None:
            parts.append(f"{self.remaining} left")
        return ", ".join(parts)


class RateLimited(Exception):
    """One 429 answer, with how long the server asked us to wait."""

    def __init__(self, retry_after: float, limit: RateLimit | None = None) -> None:
        super().__init__(f"rate limited; retry after {retry_after:.0f} s")
        self.retry_after = retry_after
        self.limit = limit or RateLimit(retry_after=retry_after)


def retry_after_seconds(
    value: str | None, default: float = 1.0, *, now: float | None = None
) -> float:
    """``Retry-After`` as seconds from now; ``default`` when absent or unreadable."""
    if not value:
        return default
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _quota(value: str | None) -> tuple[int | None, float | None]:
    match = _QUOTA.match(value or "")
    if match is None:
        return None, None
    return int(match[1]), float(match[2]) if match[2] else None


def _reset(value: str | None, now: float) -> float | None:
    if not value or not value.strip().isdigit():
        return None
    number = float(value.strip())
    return max(0.0, number - now) if number > _EPOCH_THRESHOLD else number


def _message(body: bytes) -> str:
    """The server's own words: a registry ``errors[].message`` or a Hub ``message``/``detail``."""
    text = body.decode(errors="replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return text[:300]
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", ""))[:300]
        for key in ("message", "detail"):
            if data.get(key):
                return str(data[key])[:300]
    return ""


def _when(seconds: float, now: float) -> str:
    at = datetime.fromtimestamp(now + seconds, UTC).strftime("%H:%M UTC")
    if seconds >= 90:
        return f"in {seconds / 60:.0f} min (at {at})"
    return f"in {seconds:.0f} s (at {at})"


def with_rate_limit_retries(
    send: Callable[[], httpx.Response],
    *,
    what: str,
    attempts: int = DEFAULT_ATTEMPTS,
    max_wait: float = MAX_WAIT,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> httpx.Response:
    """Call ``send`` until it answers something other than 429.

    Waits what the server names (module docstring); stops at once, without sleeping, when
    that is more than ``max_wait``, and after ``attempts`` answers in all.
    """
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt
    from tenacity.stop import stop_any, stop_base

    class beyond_budget(stop_base):
        def __call__(self, state: object) -> bool:
            outcome = getattr(state, "outcome", None)
            exc = outcome.exception() if outcome is not None else None
            return isinstance(exc, RateLimited) and exc.retry_after > max_wait

    def wait(state: object) -> float:
        outcome = getattr(state, "outcome", None)
        exc = outcome.exception() if outcome is not None else None
        return exc.retry_after if isinstance(exc, RateLimited) else 1.0

    def attempt() -> httpx.Response:
        response = send()
        if response.status_code == 429:
            limit = RateLimit.from_response(response, now=clock())
            raise RateLimited(limit.wait(), limit)
        return response

    tries = 0
    try:
        for tried in Retrying(
            retry=retry_if_exception_type(RateLimited),
            stop=stop_any(stop_after_attempt(attempts), beyond_budget()),
            wait=wait,
            sleep=sleep,
        ):
            with tried:
                tries += 1
                return attempt()
    except RetryError as exc:
        last = exc.last_attempt.exception()
        assert isinstance(last, RateLimited)
        said = f": {last.limit.message}" if last.limit.message else ""
        quota = f" ({last.limit.describe()})" if last.limit.describe() else ""
        if last.retry_after > max_wait:
            head = f"{what}: rate limited (HTTP 429){quota}{said}; not retried: the limit resets"
        else:
            head = f"{what}: rate limited (HTTP 429) {tries} times in a row{quota}{said}; it resets"
        raise RegistryError(
            f"{head} {_when(last.retry_after, clock())}",
            fix=RATE_LIMIT_FIX,
        ) from None
    raise AssertionError("unreachable: tenacity either returns or raises")
