"""Where the local runtime's switch spends its time: each step of a real deploy, timed.

Ships an app once, then ``--rounds`` code changes to it, and times each step of every
deploy's switch by wrapping the local runtime's own functions (no change to the code under
test): arming the proxy beside the gate (its reload and the wait until only armed workers
accept), the flag file that switches it, the confirmation through the stable port, the
restart policy, and what goes on after ``ship()`` returned: the reload to a plain
configuration, the drain, the old revision's stop and the prune. Every Docker engine request
made while a step runs is counted (``requests`` calls of docker-py's client, per thread), so a
step's round trips show next to its time. The "switch → done" phase that ``dev_loop.py``
reports is the flag, the confirmation and the restart policy.

    .venv/bin/python benchmarks/switch_steps.py [--rounds 5] [--app busybox|examples/monitor-app]

Needs a Docker engine, the app's base image and the ``docker-registry`` binary or
``registry:2``. Removes its service, its registry and its copy of the app.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker.api.client

from cloudship import ship
from cloudship.config import ConfigFile
from cloudship.testing import ThrowawayRegistry
from cloudship_local import provider, proxy, runtime

BUSYBOX = """\
FROM busybox:latest
COPY www /www
EXPOSE 8000
CMD ["busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]
"""


class Steps:
    """Seconds and engine requests per step, per deploy; steps may nest (the innermost one
    running gets the requests)."""

    def __init__(self) -> None:
        self.rounds: list[dict[str, tuple[float, int]]] = []
        # Per thread: the proxy is armed on one beside the gate, and the old revision
        # retired on another after ship() returned.
        self._local = threading.local()
        self._requests: dict[str, int] = defaultdict(int)
        self._guard = threading.Lock()

    @property
    def _stack(self) -> list[str]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        stack: list[str] = self._local.stack
        return stack

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._stack.append(name)
        started = time.monotonic()
        try:
            yield
        finally:
            self._stack.pop()
            with self._guard:
                seconds, count = self.rounds[-1].get(name, (0.0, 0))
                requests = self._requests.pop(name, 0)
                self.rounds[-1][name] = (seconds + time.monotonic() - started, count + requests)

    def request(self) -> None:
        if self._stack:
            with self._guard:
                self._requests[self._stack[-1]] += 1


def wrap(steps: Steps, owner: Any, attribute: str, name: str) -> None:
    """Time every call of ``owner.attribute`` as the step ``name`` (skipped when the runtime
    no longer has that function)."""
    original = getattr(owner, attribute, None)
    if original is None:
        print(f"  (no {owner.__name__}.{attribute} to time)")
        return

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        with steps.step(name):
            return original(*args, **kwargs)

    setattr(owner, attribute, timed)


def instrument(steps: Steps) -> None:
    send: Callable[..., Any] = docker.api.client.APIClient.send

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        steps.request()
        return send(self, *args, **kwargs)

    docker.api.client.APIClient.send = counted  # type: ignore[method-assign]
    rt = runtime.DockerRunRuntime
    wrap(steps, rt, "deploy", "deploy (all)")
    wrap(steps, rt, "_arm", "arm proxy (beside the gate)")
    wrap(steps, rt, "_switch", "switch (all)")
    wrap(steps, proxy, "serve_candidate", "flag: candidate serves")
    wrap(steps, proxy, "apply", "apply: new config live")
    wrap(steps, rt, "_confirm", "confirm via stable port")
    wrap(steps, rt, "_retire", "retire (after return)")
    wrap(steps, proxy, "wait_drained", "drain old workers")
    wrap(steps, rt, "_prune", "prune")
    from docker.models.containers import Container

    wrap(steps, Container, "update", "restart policy")
    wrap(steps, Container, "stop", "stop old revision")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--app", default="busybox", help="busybox, or an app folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cloudship-switch-bench-"))
    app = work / "app"
    if args.app == "busybox":
        (app / "www").mkdir(parents=True)
        (app / "Dockerfile").write_text(BUSYBOX)
        (app / "www" / "index.html").write_text("switch benchmark\n")
        nonce, port, health = app / "www" / "nonce.txt", 8000, "/"
    else:
        shutil.copytree(args.app, app)
        nonce, port, health = app / "bench-nonce.txt", 8000, "/health"
    name = f"switchbench-{uuid.uuid4().hex[:6]}"
    steps = Steps()
    instrument(steps)
    with ThrowawayRegistry() as registry:
        target = provider.target(ConfigFile(), {"registry": registry.address, "embedded": False})
        try:
            for number in range(args.rounds + 1):  # the first ship (untimed) creates the proxy
                nonce.write_text(f"{uuid.uuid4()}\n")
                steps.rounds.append({})
                ship(app, target, name=name, port=port, health_path=health, timeout=120)
                runtime.wait_for_retirements()  # its retirement's steps count in its round
                if number:
                    line = ", ".join(f"{k} {s:.3f}s/{n}" for k, (s, n) in steps.rounds[-1].items())
                    print(f"round {number}: {line}", flush=True)
        finally:
            target.runtime.destroy(name)
            shutil.rmtree(work, ignore_errors=True)
    timed = steps.rounds[1:]
    print(f"\nmedians of {len(timed)} code-change deploys ({args.app}): seconds, engine requests")
    for step in timed[0]:
        seconds = statistics.median(r[step][0] for r in timed if step in r)
        count = statistics.median(r[step][1] for r in timed if step in r)
        print(f"  {step:28} {seconds:6.3f} s  {count:4.0f}")


if __name__ == "__main__":
    main()
