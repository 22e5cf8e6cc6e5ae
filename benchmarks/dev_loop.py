"""``cloudship dev``: save-to-serving for a one-file change, side by side with its floor.

The floor is what any tool must do for that save: a no-op ship (decide nothing moved) plus the
build of the changed layer and its push. Both run in the same engine, on the same layer cache,
to the same throw-away registry, each round:

1. **no-op**: ``ship()`` of the unchanged folder to the service the loop runs;
2. **changed layer**: a second copy of the app with its own one-line edit of ``main.py`` is
   built (``Engine.build``, same cache) and pushed to a repository of its own;
3. **dev**: the watched folder gets a one-line edit of ``main.py``; the time is the loop's own
   ``DevIteration.seconds``: from the file's modification time to the new revision serving
   (debounce, build, push, canary start + probe, switch, probe).

Reported: the medians and ``dev / (no-op + changed layer)``; the goal is ≤ 1.5x. The edits of
steps 2 and 3 differ, so neither pushes a layer the registry already has from the other.

Where a pass spends its time comes from the events' arrival times (wall clock, as the save's
modification time is): **save → ship** (watchfiles' debounce, the loop picking the batch up,
config and target, up to the first event), **build**, **push**, and the deploy's phases:
**start** (pull by digest, create and start the container), **gate** (the app booting until
its health path answers, then the proxy's new configuration written and reloaded) and
**switch → done** (the proxy confirmed serving it, the old revision drained and stopped, old
revisions pruned).

    .venv/bin/python benchmarks/dev_loop.py [--rounds 5] [--app examples/monitor-app]

Needs a Docker engine, the app's base image (``python:3.11-slim`` for the example) and the
``docker-registry`` binary or ``registry:2``. Removes its service, its registry and the tags it
made; the images the builds produced stay in the engine's cache.
"""

from __future__ import annotations

import argparse
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from cloudship import BuildFinished, DeployPhase, Event, PushFinished, Target, ship
from cloudship.config import ConfigFile
from cloudship.dev import DevIteration, dev
from cloudship.engine import Engine
from cloudship.images import ImageRef
from cloudship.testing import ThrowawayRegistry
from cloudship_local import provider

GOAL = 1.5


def edit(app: Path, text: str) -> None:
    main = app / "main.py"
    lines = main.read_text().splitlines()
    lines = [line for line in lines if not line.startswith("# bench:")]
    main.write_text("\n".join([*lines, f"# bench: {text}"]) + "\n")


def changed_layer(app: Path, registry: ThrowawayRegistry, engine: Engine) -> float:
    """Build the edited copy and push it: the work a one-file change cannot avoid."""
    target = provider.target(ConfigFile(), {"registry": registry.address, "embedded": False})
    started = time.perf_counter()
    built = engine.build(app, tag="cloudship-bench/dev-floor:latest")
    ref = ImageRef.parse(f"{registry.address}/dev-floor").with_tag(uuid.uuid4().hex[:12])
    engine.tag(built.image_id, ref)
    engine.push(ref, target.registry.credentials())
    elapsed = time.perf_counter() - started
    engine.client.api.remove_image(str(ref))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--app", default="examples/monitor-app")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args()

    engine = Engine.shared()
    work = Path(tempfile.mkdtemp(prefix="cloudship-dev-bench-"))
    watched, floor = work / "app", work / "floor"
    shutil.copytree(args.app, watched)
    shutil.copytree(args.app, floor)
    name = f"devbench-{uuid.uuid4().hex[:6]}"
    with ThrowawayRegistry() as registry:
        built = provider.target(ConfigFile(), {"registry": registry.address, "embedded": False})
        target = Target(registry=built.registry, runtime=built.runtime, name="local")
        passes: queue.Queue[DevIteration] = queue.Queue()
        seen: list[tuple[float, Event]] = []  # appended by the loop's thread
        stop = threading.Event()
        loop = threading.Thread(
            target=dev,
            args=(watched, target),
            kwargs={
                "name": name,
                "stop": stop,
                "on_iteration": passes.put,
                "timeout": 120,
                "on_event": lambda event: seen.append((time.time(), event)),
            },
            daemon=True,
        )
        try:
            loop.start()
            first = passes.get(timeout=900)
            if not first.ok:
                sys.exit(f"the first ship failed: {first.error}")
            noop, floor_times, dev_times = [], [], []
            breakdowns: list[dict[str, float]] = []
            for round_ in range(args.rounds):
                started = time.perf_counter()
                unchanged = ship(watched, target, name=name)
                noop.append(time.perf_counter() - started)
                assert not unchanged.changed, "the no-op ship moved something"
                edit(floor, f"floor {round_} {uuid.uuid4().hex}")
                floor_times.append(changed_layer(floor, registry, engine))
                mark = len(seen)
                edit(watched, f"dev {round_} {uuid.uuid4().hex}")
                saved = (watched / "main.py").stat().st_mtime
                shipped = passes.get(timeout=300)
                if not shipped.ok or shipped.changed != ("main.py",):
                    sys.exit(f"round {round_}: the loop did not ship main.py: {shipped}")
                dev_times.append(shipped.seconds)
                assert shipped.shipment is not None
                breakdowns.append(breakdown(saved, seen[mark:]))
                phases = ", ".join(f"{k} {v:.2f}s" for k, v in breakdowns[-1].items())
                print(
                    f"round {round_ + 1}: no-op {noop[-1]:.2f}s, changed layer "
                    f"{floor_times[-1]:.2f}s, dev save→serving {shipped.seconds:.2f}s "
                    f"({phases})",
                    flush=True,
                )
        finally:
            stop.set()
            loop.join(timeout=60)
            target.runtime.destroy(name)
            shutil.rmtree(work, ignore_errors=True)

    report(args.app, noop, floor_times, dev_times, breakdowns, strict=args.strict)


def breakdown(saved: float, events: list[tuple[float, Event]]) -> dict[str, float]:
    """Seconds per part of one pass, from the wall-clock arrival of its events."""
    marks = {"save": saved, "first event": events[0][0]}
    for at, event in events:
        if isinstance(event, BuildFinished):
            marks["built"] = at
        elif isinstance(event, PushFinished):
            marks["pushed"] = at
        elif isinstance(event, DeployPhase) and event.phase not in marks:
            marks[event.phase] = at  # the first of each: pull, start, probe, switch, done
    parts = {
        "save → ship": ("save", "first event"),
        "build": ("first event", "built"),
        "push": ("built", "pushed"),
        "start": ("pushed", "probe"),
        "gate": ("probe", "switch"),
        "switch → done": ("switch", "done"),
    }
    return {
        part: marks[end] - marks[begin]
        for part, (begin, end) in parts.items()
        if begin in marks and end in marks
    }


def report(
    app: str,
    noop: list[float],
    floor: list[float],
    looped: list[float],
    breakdowns: list[dict[str, float]],
    *,
    strict: bool,
) -> None:
    m_noop, m_floor, m_dev = (statistics.median(x) for x in (noop, floor, looped))
    ratio = m_dev / (m_noop + m_floor)
    verdict = "pass" if ratio <= GOAL else "FAIL"
    print(f"\nmedian of {len(looped)} rounds ({app}):")
    print(f"  no-op ship               {m_noop:6.2f}s")
    print(f"  changed layer build+push {m_floor:6.2f}s")
    print(f"  dev save → serving       {m_dev:6.2f}s")
    print(f"  dev / (no-op + changed layer) = {ratio:.2f}x (goal ≤ {GOAL}x): {verdict}")
    print("  where a pass spends it (medians):")
    for part in breakdowns[0]:
        values = [one[part] for one in breakdowns if part in one]
        print(f"    {part:14} {statistics.median(values):6.2f}s")
    if strict and ratio > GOAL:
        sys.exit(1)


if __name__ == "__main__":
    main()
