"""Downtime of a good upgrade, and how fast a crash-looping revision is detected.

upgrade
    A monitor GETs the service's URL every 50 ms on a fresh connection while a new version is
    shipped. Side by side in one run, for each app:

    - cloudship: ``ship(v2, target=local)`` over a running v1 (the proxy switch);
    - by hand: ``docker rm -f`` the v1 container, then ``docker run -p PORT:8000`` v2 on the
      same port (what a deploy script without a proxy does; the pre-proxy local runtime was
      this plus a canary).

    Reported per contender: failed requests, and the downtime window (first to last failure).

crash-loop
    ``ship()`` of an app that exits at once, and of one that exits after 1 s, over a serving
    v1: seconds from the ``start`` phase to ``HealthCheckFailed``.

Apps: busybox httpd (starts in ms), busybox httpd behind a 3 s ``sleep`` (an app that takes
seconds to start) and, when ``python:3.11-slim`` is in the engine, ``python3 -m http.server``.
Every container, service and registry the benchmark makes is removed. Informational: exit 0.

    .venv/bin/python benchmarks/downtime.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cloudship import HealthCheckFailed, ship
from cloudship.config import ConfigFile
from cloudship.events import DeployPhase, Event
from cloudship.testing import ThrowawayRegistry, free_port
from cloudship_local import provider

INTERVAL = 0.05

APPS = {
    "busybox": ("busybox:latest", '["busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]'),
    "slow-3s": (
        "busybox:latest",
        '["sh", "-c", "sleep 3; exec busybox httpd -f -p 8000 -h /www"]',
    ),
    "python": ("python:3.11-slim", '["python3", "-m", "http.server", "8000", "-d", "/www"]'),
}
CRASHES = {
    "exits at once": '["sh", "-c", "echo boom; exit 3"]',
    "exits after 1 s": '["sh", "-c", "sleep 1; exit 1"]',
}


def write_app(folder: Path, base: str, cmd: str, body: str) -> Path:
    (folder / "www").mkdir(parents=True, exist_ok=True)
    (folder / "www" / "index.html").write_text(body + "\n")
    (folder / "Dockerfile").write_text(f"FROM {base}\nCOPY www /www\nEXPOSE 8000\nCMD {cmd}\n")
    return folder


@dataclass
class Monitor:
    url: str
    outcomes: list[tuple[float, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=2.0, limits=httpx.Limits(max_keepalive_connections=0)) as c:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    ok = c.get(self.url).status_code < 400
                except httpx.HTTPError:
                    ok = False
                self.outcomes.append((started, ok))
                self._stop.wait(max(0.0, INTERVAL - (time.monotonic() - started)))

    def __enter__(self) -> Monitor:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> tuple[int, float]:
        failed = [t for t, ok in self.outcomes if not ok]
        return len(failed), (failed[-1] - failed[0] + INTERVAL) if failed else 0.0


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def wait_up(url: str, seconds: float = 60) -> None:
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        try:
            if httpx.get(url, timeout=1).status_code < 400:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} never came up")


def upgrade_cloudship(
    work: Path, registry: ThrowawayRegistry, base: str, cmd: str
) -> tuple[int, float]:
    target = provider.target(ConfigFile(), {"registry": registry.address, "embedded": False})
    name = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        first = ship(write_app(work / f"{name}-v1", base, cmd, "v1"), target, name=name)
        assert first.url
        with Monitor(first.url) as monitor:
            ship(write_app(work / f"{name}-v2", base, cmd, "v2"), target, name=name)
            time.sleep(0.3)
        return monitor.result()
    finally:
        target.runtime.destroy(name)


def upgrade_by_hand(work: Path, base: str, cmd: str) -> tuple[int, float]:
    tag = f"bench-hand-{uuid.uuid4().hex[:8]}"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    images = []
    for body in ("v1", "v2"):
        folder = write_app(work / f"{tag}-{body}", base, cmd, body)
        docker("build", "-q", "-t", f"{tag}:{body}", str(folder))
        images.append(f"{tag}:{body}")
    try:
        docker("run", "-d", "--init", "--name", tag, "-p", f"127.0.0.1:{port}:8000", images[0])
        wait_up(url)
        with Monitor(url) as monitor:
            docker("rm", "-f", tag)
            docker("run", "-d", "--init", "--name", tag, "-p", f"127.0.0.1:{port}:8000", images[1])
            wait_up(url)
            time.sleep(0.3)
        return monitor.result()
    finally:
        subprocess.run(["docker", "rm", "-f", tag], check=False, capture_output=True)
        subprocess.run(["docker", "rmi", *images], check=False, capture_output=True)


def crash_detection(work: Path, registry: ThrowawayRegistry, cmd: str) -> float:
    target = provider.target(ConfigFile(), {"registry": registry.address, "embedded": False})
    name = f"bench-{uuid.uuid4().hex[:8]}"
    good = APPS["busybox"][1]
    started: list[float] = []

    def on_event(event: Event) -> None:
        if isinstance(event, DeployPhase) and event.phase == "start":
            started.append(time.monotonic())

    try:
        ship(write_app(work / f"{name}-v1", "busybox:latest", good, "v1"), target, name=name)
        try:
            ship(
                write_app(work / f"{name}-bad", "busybox:latest", cmd, "bad"),
                target,
                name=name,
                on_event=on_event,
                timeout=120,
            )
        except HealthCheckFailed:
            return time.monotonic() - started[0]
        raise RuntimeError("the crashing app passed its gate")
    finally:
        target.runtime.destroy(name)


def has_image(image: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", image], check=False, capture_output=True
        ).returncode
        == 0
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cloudship-downtime-"))
    print(f"upgrade: monitor every {INTERVAL * 1000:.0f} ms, fresh connection per request")
    print(f"{'app':10} {'contender':10} {'failed requests (per round)':30} {'downtime, median'}")
    with ThrowawayRegistry() as registry:
        for app, (base, cmd) in APPS.items():
            if not has_image(base):
                print(f"{app:10} skipped: {base} is not in the engine")
                continue
            for contender in ("cloudship", "by hand"):
                results = [
                    upgrade_cloudship(work, registry, base, cmd)
                    if contender == "cloudship"
                    else upgrade_by_hand(work, base, cmd)
                    for _ in range(args.rounds)
                ]
                failed = [f for f, _ in results]
                window = statistics.median(w for _, w in results)
                print(f"{app:10} {contender:10} {failed!s:30} {window * 1000:.0f} ms")
        print("\ncrash-loop: seconds from the `start` phase to HealthCheckFailed")
        for what, cmd in CRASHES.items():
            times = [crash_detection(work, registry, cmd) for _ in range(args.rounds)]
            print(
                f"{what:18} median {statistics.median(times):.2f} s  (rounds: "
                + ", ".join(f"{t:.2f}" for t in times)
                + ")"
            )
    sys.exit(0)


if __name__ == "__main__":
    main()
