"""Helpers of the reliability suite: a 50 ms poller and apps that start slowly or crash."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import write_app


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/reliability" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)


def slow_app(folder: Path, body: str, *, delay: float) -> Path:
    """Answers only ``delay`` seconds after it starts, like an app loading its model."""
    cmd = f'["sh", "-c", "sleep {delay}; exec busybox httpd -f -p 8000 -h /www"]'
    return write_app(folder, body, cmd=cmd)


def crashing_app(folder: Path) -> Path:
    return write_app(folder, "broken", cmd='["sh", "-c", "echo boom; exit 3"]')


@dataclass
class Poller:
    """GETs ``url`` every ``interval`` seconds on a fresh connection, as a monitor does, and
    keeps every outcome: the body (stripped) or the error. With ``keepalive=True`` it reuses
    one pooled connection as browsers and API clients do, so a switch that drops idle
    keep-alive connections shows up as failures (httpx does not retry a request whose
    connection the server closed)."""

    url: str
    interval: float = 0.05
    keepalive: bool = False
    outcomes: list[tuple[float, str]] = field(default_factory=list)
    #: how long to go on polling after the block returned
    after: float = 0.3
    returned: float = float("inf")
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        keep = 1 if self.keepalive else 0
        self._client = httpx.Client(
            timeout=2.0, limits=httpx.Limits(max_keepalive_connections=keep)
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = self._client.get(self.url)
                text = response.text.strip() if response.status_code < 400 else ""
                outcome = text or f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                outcome = f"error {type(exc).__name__}"
            self.outcomes.append((started, outcome))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def __enter__(self) -> Poller:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # What the block did (a ship) has returned: go on polling a little, so the requests
        # made after it show what the service serves now.
        self.returned = time.monotonic()
        time.sleep(self.after)
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._client.close()

    @property
    def failures(self) -> list[str]:
        return [o for _, o in self.outcomes if o.startswith(("error", "HTTP"))]

    def answers(self) -> list[str]:
        """The distinct answers in the order they first came (e.g. ["v1", "v2"])."""
        seen: list[str] = []
        for _, outcome in self.outcomes:
            if not seen or seen[-1] != outcome:
                seen.append(outcome)
        return seen

    def assert_switched(self, old: str, new: str, *, overlap: float = 0.5) -> None:
        """No failed request; ``old`` first, and only ``new`` for every request made after
        the block (the ship) returned. During nginx's graceful reload the old workers may
        still accept a connection for a few ms after the new ones start (both answer: no
        request fails), so ``old`` may still be seen within ``overlap`` seconds of the first
        ``new``, never later."""
        assert self.failures == [], self.summary()
        assert {o for _, o in self.outcomes} == {old, new}, self.summary()
        assert self.outcomes[0][1] == old, self.summary()
        since = [o for t, o in self.outcomes if t > self.returned]
        assert since and set(since) == {new}, (since, self.summary())
        first_new = next(t for t, o in self.outcomes if o == new)
        late_old = [t - first_new for t, o in self.outcomes if o == old and t > first_new]
        assert all(delay <= overlap for delay in late_old), (late_old, self.summary())

    def summary(self) -> str:
        return ", ".join(
            f"{n} x {what}" for what, n in Counter(o for _, o in self.outcomes).items()
        )
