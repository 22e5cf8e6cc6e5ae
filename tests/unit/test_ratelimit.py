import email.utils
import time

import httpx
import pytest

from cloudship.errors import RegistryError
from cloudship.ratelimit import retry_after_seconds, with_rate_limit_retries


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None, default=2.0) == 2.0
    assert retry_after_seconds("soon", default=3.0) == 3.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 31


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
    queue = answers(429, 429, 429, retry_after="90")
    slept: list[float] = []
    with pytest.raises(RegistryError, match=r"rate limited \(HTTP 429\) 3 times") as info:
        with_rate_limit_retries(lambda: queue.pop(0), what="hub", sleep=slept.append)
    assert "wait 90 s" in str(info.value)
    assert slept == [60.0, 60.0], "waits are capped"


def test_other_statuses_pass_through() -> None:
    queue = answers(404)
    assert with_rate_limit_retries(lambda: queue.pop(0), what="x").status_code == 404
