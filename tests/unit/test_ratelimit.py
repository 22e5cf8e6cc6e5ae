import email.utils
import json
import time

import httpx
import pytest

from cloudship.errors import RegistryError
from cloudship.ratelimit import RateLimit, retry_after_seconds, with_rate_limit_retries

#: Docker Hub's pull-limit answer: the documented body, ``ratelimit-*`` headers with a window,
#: no Retry-After (https://docs.docker.com/docker-hub/usage/pulls/#view-pull-rate-and-limit)
PULL_LIMIT_BODY = json.dumps(
    {
        "errors": [
            {
                "code": "TOOMANYREQUESTS",
                "message": "You have reached your pull rate limit. You may increase the limit "
                "by authenticating and upgrading: https://www.docker.com/increase-rate-limits",
            }
        ]
    }
).encode()
PULL_LIMIT_HEADERS = {
    "ratelimit-limit": "100;w=3600",
    "ratelimit-remaining": "0;w=3600",
    "docker-ratelimit-source": "192.0.2.1",
}


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None, default=2.0) == 2.0
    assert retry_after_seconds("soon", default=3.0) == 3.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 31


def test_docker_pull_limit_headers_mean_wait_for_the_window() -> None:
    limit = RateLimit.from_headers(PULL_LIMIT_HEADERS, PULL_LIMIT_BODY)
    assert (limit.limit, limit.remaining, limit.window) == (100, 0, 3600.0)
    assert limit.retry_after is None and limit.wait() == 3600.0
    assert limit.message.startswith("You have reached your pull rate limit")
    assert limit.describe() == "limit 100 per 3600 s, 0 left"


def test_reset_as_seconds_or_as_a_unix_timestamp() -> None:
    now = 1_800_000_000.0
    assert RateLimit.from_headers({"RateLimit-Reset": "42"}, now=now).wait() == 42.0
    hub_api = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(now) + 120)}
    assert RateLimit.from_headers(hub_api, now=now).wait() == 120.0
    # Retry-After wins over everything else
    both = {"Retry-After": "3", "X-RateLimit-Reset": str(int(now) + 120)}
    assert RateLimit.from_headers(both, now=now).wait() == 3.0
    assert RateLimit.from_headers({}, b"not json", now=now).wait() == 1.0


def answers(*statuses: int, retry_after: str = "4") -> list[httpx.Response]:
    return [
        httpx.Response(s, headers={"Retry-After": retry_after} if s == 429 else {})
        for s in statuses
    ]


def test_429_is_retried_after_the_servers_delay() -> None:
    queue = answers(429, 429, 200)
    slept: list[float] = []
    response = with_rate_limit_retries(lambda: queue.pop(0), what="x", sleep=slept.append)
    assert response.status_code == 200
    assert slept == [4.0, 4.0]


def test_persistent_429_is_reported_with_the_wait() -> None:
    queue = answers(429, 429, 429, retry_after="20")
    slept: list[float] = []
    with pytest.raises(RegistryError, match=r"rate limited \(HTTP 429\) 3 times") as info:
        with_rate_limit_retries(lambda: queue.pop(0), what="hub", sleep=slept.append)
    assert "resets in 20 s" in str(info.value)
    assert slept == [20.0, 20.0]


def test_a_wait_beyond_the_budget_is_not_slept_and_says_when_it_resets() -> None:
    now = 1_800_000_000.0  # 2027-01-15 08:00 UTC
    calls: list[int] = []

    def send() -> httpx.Response:
        calls.append(1)
        return httpx.Response(429, headers=PULL_LIMIT_HEADERS, content=PULL_LIMIT_BODY)

    slept: list[float] = []
    with pytest.raises(RegistryError) as info:
        with_rate_limit_retries(
            send, what="pull alice/web", sleep=slept.append, clock=lambda: now, max_wait=60
        )
    text = str(info.value)
    assert calls == [1] and slept == [], "an hour-long window is not retried"
    assert "not retried: the limit resets in 60 min (at 09:00 UTC)" in text
    assert "You have reached your pull rate limit" in text
    assert "limit 100 per 3600 s, 0 left" in text
    assert "100/hour for Personal accounts" in text


def test_other_statuses_pass_through() -> None:
    queue = answers(404)
    assert with_rate_limit_retries(lambda: queue.pop(0), what="x").status_code == 404
