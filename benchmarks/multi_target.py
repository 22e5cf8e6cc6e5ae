"""Three targets in one ship() vs. the slowest of the three shipped alone, side by side.

Each round ships new content (a nonce file) so every run builds, pushes and deploys for real:
  single: ship(app, target_i) for each of three local targets, each on its own registry,
  multi:  ship(app, [t1, t2, t3]): one build, three pushes and three deploys at once.
The claim: multi ≤ 1.3x the slowest single. Prints medians and the ratio; exit 0 unless
--strict and the target is missed.

    .venv/bin/python benchmarks/multi_target.py [--rounds 5] [--strict]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from cloudship import ship
from cloudship.config import ConfigFile
from cloudship.targets import Target
from cloudship.testing import ThrowawayRegistry
from cloudship_local import provider

TARGET_RATIO = 1.3
DOCKERFILE = """\
FROM busybox:latest
RUN echo dependencies > /deps.txt
COPY www /www
EXPOSE 8000
CMD ["busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]
"""


def make_app(folder: Path) -> Path:
    (folder / "www").mkdir(parents=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "www" / "index.html").write_text("ok\n")
    return folder


def new_content(app: Path) -> None:
    (app / "www" / "nonce.txt").write_text(uuid.uuid4().hex)


@contextmanager
def three_targets() -> Iterator[list[Target]]:
    with ExitStack() as stack:
        targets = []
        for index in range(1, 4):
            registry = stack.enter_context(ThrowawayRegistry())
            built = provider.target(
                ConfigFile(),
                {"registry": registry.address, "embedded": False, "project": f"bench{index}"},
            )
            targets.append(
                Target(
                    registry=built.registry, runtime=built.runtime, name=f"t{index}", paired=True
                )
            )
        yield targets


def timed_ship(app: Path, target: Target | list[Target], name: str) -> float:
    new_content(app)
    started = time.monotonic()
    ship(app, target, name=name)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="cloudship-bench-multi-"))
    app = make_app(folder / "app")
    services: list[tuple[Target, str]] = []
    slowest: list[float] = []
    multi: list[float] = []
    try:
        with three_targets() as targets:
            timed_ship(app, targets, "warmup")  # untimed: imports, engine connection
            services += [(t, "warmup") for t in targets]
            for round_ in range(1, args.rounds + 1):
                singles = []
                for target in targets:
                    name = f"single-{round_}"
                    singles.append(timed_ship(app, target, name))
                    services.append((target, name))
                name = f"multi-{round_}"
                multi.append(timed_ship(app, targets, name))
                services += [(t, name) for t in targets]
                slowest.append(max(singles))
                print(
                    f"round {round_}: singles {', '.join(f'{s:.2f}' for s in singles)} s; "
                    f"three at once {multi[-1]:.2f} s"
                )
            for target, name in services:
                target.runtime.destroy(name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    single_median, multi_median = statistics.median(slowest), statistics.median(multi)
    ratio = multi_median / single_median
    verdict = "pass" if ratio <= TARGET_RATIO else "FAIL"
    print(f"\nslowest single target, median  {single_median:.2f} s")
    print(f"three targets at once, median  {multi_median:.2f} s")
    print(f"ratio {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict}")
    if args.strict and verdict == "FAIL":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
