"""cloudship ``ship()`` vs. the same steps done by hand with the docker CLI, side by side.

Two scenarios, each timed over N interleaved rounds (the contender that goes first alternates
from round to round), reported as medians and a cloudship/CLI ratio:

cold
    A new service and new image content for both contenders. Each round copies the app into a
    fresh folder per contender and writes a unique nonce file into it, so both builds miss the
    cache from that COPY on (the base image cache is warm for both). cloudship runs
    ``ship(copy, target=local, name=<new>, port=...)``; the CLI runs ``docker build``,
    ``docker tag``, ``docker push`` (to a new repository), ``docker pull repo@digest``,
    ``docker run -d -p 127.0.0.1:PORT:APPPORT repo@digest`` and polls the URL until HTTP 200.

code-change
    The service runs; one code file changes (the nonce file, copied by the Dockerfile's last
    COPY) before each round, so only the code layer is rebuilt and pushed. cloudship runs
    ``ship()``; the CLI runs build, tag, push, ``docker rm -f``, ``docker run``, probe.

fresh
    cloudship against itself: a build on a *fresh engine* (a second dockerd with an empty data
    root, ``cloudship.testing.fresh_engine``) of a source whose previous image the target
    serves, with the registry cache (pull of that image + ``cachefrom``), vs. the same build on
    another fresh engine with ``no_cache=True``. Both builds use host networking (the fresh
    engines have no NAT); both legs first pull the base image from the registry (timed apart,
    not in the ratio: a fresh runner has no base image either).

no-op
    The same, unchanged source shipped again to a service that already runs it. cloudship runs
    ``ship()`` (it should find the digest in the registry and the revision serving, and do
    nothing). The CLI flow is what a deploy script without digest checks does to "make sure it
    is deployed": ``docker build`` (cache hit), ``docker tag``, ``docker push`` (layers exist),
    ``docker rm -f`` + ``docker run`` + probe. That flow is an assumption, stated in the output.

Both contenders push to the same throw-away registry and probe with the same policy (first try
at once, then every 0.25 s, like cloudship's ``wait_healthy``). Every container, service and
image the benchmark creates is removed at the end. The exit code is 0 unless ``--strict`` is
given and a target is missed.

The CLI peer is BuildKit by hand: ``DOCKER_BUILDKIT=1`` with ``--docker`` (default Debian's
``/usr/bin/docker``, whose 20.10 CLI has BuildKit built in; the newer CLI on PATH has no buildx
here). ``--classic`` makes the peer the classic builder instead.

    .venv/bin/python benchmarks/ship_vs_cli.py [--rounds 5] [--app examples/monitor-app]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cloudship import ship
from cloudship.config import ConfigFile
from cloudship.events import BuildFinished, DeployPhase, Event, PushFinished
from cloudship.targets import Target
from cloudship.testing import ThrowawayRegistry, free_port
from cloudship_local import provider

TARGETS = {"cold": 1.05, "code-change": 1.05, "no-op": 0.2, "fresh": 0.3}
PEER = {
    "docker": "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker",
    "buildkit": "1",
}
# The local runtime's health gate polls every 20 ms for its first 3 s (cloudship_local.runtime,
# _FAST_PROBE_SECONDS): the peer polls as fast, so neither side wins on its poll schedule.
PROBE_INTERVAL = 0.02
PROBE_TIMEOUT = 120.0
NOOP_ASSUMPTION = (
    "no-op CLI flow = docker build (cache hit) + tag + push (layers exist) + docker rm -f + "
    "docker run + probe: a deploy script without digest checks"
)

BUSYBOX_DOCKERFILE = """\
FROM busybox:latest
COPY www /www
EXPOSE 8000
CMD ["busybox", "httpd", "-f", "-p", "8000", "-h", "/www"]
"""


# -- the app under test ---------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    """A build directory to copy per run, and how to reach it once it runs."""

    template: Path
    port: int
    health_path: str
    nonce_file: str  # relative path the Dockerfile copies into the image

    def copy(self, parent: Path, label: str) -> Path:
        """A fresh copy of the app with a unique nonce: new image content, new top layers."""
        folder = parent / f"{label}-{uuid.uuid4().hex[:8]}"
        shutil.copytree(self.template, folder)
        nonce = folder / self.nonce_file
        nonce.parent.mkdir(parents=True, exist_ok=True)
        nonce.write_text(f"{uuid.uuid4()}\n")
        return folder


def busybox_app(parent: Path) -> App:
    folder = parent / "busybox-template"
    (folder / "www").mkdir(parents=True)
    (folder / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
    (folder / "www" / "index.html").write_text("<h1>cloudship benchmark</h1>\n")
    return App(template=folder, port=8000, health_path="/", nonce_file="www/nonce.txt")


def app_from_dir(path: Path, port: int | None, health_path: str | None) -> App:
    """An existing app directory; port and health path default to its cloudship.toml."""
    config = path / "cloudship.toml"
    table = tomllib.loads(config.read_text()).get("app", {}) if config.is_file() else {}
    return App(
        template=path.resolve(),
        port=port or int(table.get("port", 8000)),
        health_path=health_path or str(table.get("health_path", "/")),
        nonce_file="bench-nonce.txt",
    )


# -- measurements ---------------------------------------------------------------------------


@dataclass
class Sample:
    """One timed run: the wall time and how it split into steps."""

    total: float
    steps: dict[str, float] = field(default_factory=dict)


@dataclass
class Series:
    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(s.total for s in self.samples)

    def step_medians(self) -> dict[str, float]:
        names = list(dict.fromkeys(n for s in self.samples for n in s.steps))
        return {n: statistics.median(s.steps.get(n, 0.0) for s in self.samples) for n in names}


@dataclass
class Cleanup:
    """Everything created, removed at the end whatever happens."""

    services: set[str] = field(default_factory=set)
    containers: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)

    def remove_container(self, name: str) -> None:
        docker("rm", "-f", name, check=False)
        self.containers.discard(name)

    def destroy_service(self, target: Target, name: str) -> None:
        target.runtime.destroy(name)
        self.services.discard(name)

    def run(self, target: Target) -> None:
        for name in sorted(self.services):
            target.runtime.destroy(name)
        if self.containers:
            docker("rm", "-f", *sorted(self.containers), check=False)
        # The no-op CLI image can be the parent of cloudship's (same cached steps, plus
        # cloudship's label step): what one pass cannot remove, the next one can.
        pending = sorted(self.images)
        while pending:
            failed = [image for image in pending if not docker_ok("rmi", "-f", image)]
            if failed == pending:
                print(f"  could not remove images {failed}", file=sys.stderr)
                break
            pending = failed


def _peer_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": PEER["buildkit"]}


def docker_ok(*args: str) -> bool:
    done = subprocess.run(
        [PEER["docker"], *args], check=False, capture_output=True, env=_peer_env()
    )
    return done.returncode == 0


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        [PEER["docker"], *args], check=False, capture_output=True, text=True, env=_peer_env()
    )
    if done.returncode != 0:
        failure = f"docker {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
        if check:
            raise RuntimeError(failure)
        print(f"  (ignored) {failure.strip()}", file=sys.stderr)
    return done.stdout


@contextmanager
def timed(steps: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        steps[name] = time.perf_counter() - started


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Poll ``url`` until it answers HTTP 200: at once, then every PROBE_INTERVAL."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            pass
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")
        time.sleep(PROBE_INTERVAL)


# -- the docker CLI contender ---------------------------------------------------------------


@dataclass(frozen=True)
class CliFlow:
    registry: str
    app: App
    cleanup: Cleanup

    def build_tag_push(self, folder: Path, local: str, remote: str, steps: dict[str, float]) -> str:
        """docker build / tag / push; return the pushed manifest digest."""
        with timed(steps, "docker build"):
            docker("build", "-t", local, str(folder))
        with timed(steps, "docker tag"):
            docker("tag", local, remote)
        with timed(steps, "docker push"):
            out = docker("push", remote)
        self.cleanup.images.add(docker("image", "inspect", "-f", "{{.Id}}", local).strip())
        found = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
        if not found:
            raise RuntimeError(f"docker push {remote} printed no digest:\n{out}")
        return found[1]

    def run_and_probe(self, container: str, image: str, port: int, steps: dict[str, float]) -> None:
        self.cleanup.containers.add(container)
        with timed(steps, "docker run"):
            docker(
                "run",
                "-d",
                "--name",
                container,
                "-p",
                f"127.0.0.1:{port}:{self.app.port}",
                image,
            )
        with timed(steps, "probe"):
            probe(f"http://127.0.0.1:{port}{self.app.health_path}")

    def cold(self, folder: Path) -> Sample:
        name = f"bench-cli-{uuid.uuid4().hex[:8]}"
        repository = f"{self.registry}/{name}"
        steps: dict[str, float] = {}
        started = time.perf_counter()
        digest = self.build_tag_push(folder, f"{name}:latest", f"{repository}:latest", steps)
        pinned = f"{repository}@{digest}"
        with timed(steps, "docker pull @digest"):
            docker("pull", pinned)
        self.run_and_probe(name, pinned, free_port(), steps)
        sample = Sample(time.perf_counter() - started, steps)
        self.cleanup.remove_container(name)  # untimed: one service per round is enough
        return sample

    def noop(self, folder: Path, name: str, port: int) -> Sample:
        """Re-deploy ``name`` from the unchanged ``folder`` the way a plain script does."""
        steps: dict[str, float] = {}
        started = time.perf_counter()
        repository = f"{self.registry}/{name}"
        digest = self.build_tag_push(folder, f"{name}:latest", f"{repository}:latest", steps)
        with timed(steps, "docker rm -f"):
            docker("rm", "-f", name, check=False)  # absent on the first (warm-up) run
        self.run_and_probe(name, f"{repository}@{digest}", port, steps)
        return Sample(time.perf_counter() - started, steps)


# -- the cloudship contender ----------------------------------------------------------------

# The step an event closes: the time since the previous event is spent in that step.
_CLOSES = {
    "BuildFinished": "build (+ prepare, engine connect)",
    "PushFinished": "registry check / push",
    "pull": "deploy: read state, pick port",
    "unchanged": "deploy: read state",
    "start": "deploy: pull @digest",
    "probe": "deploy: docker run",
    "done": "deploy: health probe",
}


@dataclass
class EventClock:
    """Turns ``on_event`` timestamps into step durations."""

    started: float = field(default_factory=time.perf_counter)
    marks: list[tuple[str, float]] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        if isinstance(event, BuildFinished | PushFinished):
            self.marks.append((type(event).__name__, time.perf_counter()))
        elif isinstance(event, DeployPhase):
            self.marks.append((event.phase, time.perf_counter()))

    def steps(self, ended: float) -> dict[str, float]:
        steps: dict[str, float] = {}
        previous = self.started
        for mark, at in [*self.marks, ("end", ended)]:
            name = _CLOSES.get(mark, "finish (prune, return)" if mark == "end" else mark)
            steps[name] = steps.get(name, 0.0) + at - previous
            previous = at
        return steps


@dataclass(frozen=True)
class CloudshipFlow:
    target: Target
    app: App
    cleanup: Cleanup

    def ship(self, folder: Path, name: str, *, expect_changed: bool) -> Sample:
        clock = EventClock()
        shipment = ship(
            folder,
            target=self.target,
            name=name,
            port=self.app.port,
            health_path=self.app.health_path,
            on_event=clock,
        )
        ended = time.perf_counter()
        if shipment.build:
            self.cleanup.images.add(shipment.build.image_id)
        if shipment.changed != expect_changed:
            raise RuntimeError(f"ship({folder}) returned changed={shipment.changed}: {shipment}")
        if expect_changed and shipment.build and shipment.build.cache_hits >= shipment.build.steps:
            raise RuntimeError(f"cold ship of {folder} was all cache hits: not cold")
        return Sample(ended - clock.started, clock.steps(ended))

    def cold(self, folder: Path) -> Sample:
        name = f"bench-cs-{uuid.uuid4().hex[:8]}"
        self.cleanup.services.add(name)
        sample = self.ship(folder, name, expect_changed=True)
        self.cleanup.destroy_service(self.target, name)  # untimed
        return sample


# -- the benchmark --------------------------------------------------------------------------


@dataclass
class Result:
    cloudship: Series = field(default_factory=Series)
    cli: Series = field(default_factory=Series)

    @property
    def ratio(self) -> float:
        return self.cloudship.median / self.cli.median


def interleave(
    rounds: int, cloudship_run: Callable[[], Sample], cli_run: Callable[[], Sample], label: str
) -> Result:
    result = Result()
    for number in range(rounds):
        order = [("cloudship", cloudship_run), ("cli", cli_run)]
        for who, run in order if number % 2 == 0 else order[::-1]:
            sample = run()
            (result.cloudship if who == "cloudship" else result.cli).samples.append(sample)
            print(f"  {label} round {number + 1}: {who:9} {sample.total:6.2f} s", flush=True)
    return result


def warm_up(work: Path, cs: CloudshipFlow, cli: CliFlow) -> None:
    """One untimed cold run per side: imports, docker clients, page and base-image caches."""
    cs.cold(cs.app.copy(work, "warm-cs"))
    cli.cold(cli.app.copy(work, "warm-cli"))


def cold_scenario(rounds: int, work: Path, cs: CloudshipFlow, cli: CliFlow) -> Result:
    return interleave(
        rounds,
        lambda: cs.cold(cs.app.copy(work, "cs")),
        lambda: cli.cold(cli.app.copy(work, "cli")),
        "cold",
    )


def code_change_scenario(rounds: int, work: Path, cs: CloudshipFlow, cli: CliFlow) -> Result:
    suffix = uuid.uuid4().hex[:6]
    cs_dir, cli_dir = cs.app.copy(work, "code-cs"), cli.app.copy(work, "code-cli")
    cs_name, cli_name = f"bench-cs-code-{suffix}", f"bench-cli-code-{suffix}"
    cs.cleanup.services.add(cs_name)
    cli_port = free_port()
    cs.ship(cs_dir, cs_name, expect_changed=True)  # untimed: both services deployed once
    cli.noop(cli_dir, cli_name, cli_port)

    def change(folder: Path) -> Path:
        (folder / cs.app.nonce_file).write_text(f"{uuid.uuid4()}\n")
        return folder

    return interleave(
        rounds,
        lambda: cs.ship(change(cs_dir), cs_name, expect_changed=True),
        lambda: cli.noop(change(cli_dir), cli_name, cli_port),
        "code-change",
    )


def fresh_scenario(rounds: int, work: Path, cs: CloudshipFlow, cli: CliFlow) -> Result:
    """Registry cache (cloudship column) vs. no cache (the 'CLI' column holds the no-cache
    build: the same cloudship build with ``no_cache=True``), each on a fresh engine."""
    from cloudship.engine import Engine
    from cloudship.testing.fresh_engine import fresh_engine

    folder = cs.app.copy(work, "fresh")
    name = f"bench-cs-fresh-{uuid.uuid4().hex[:6]}"
    cs.cleanup.services.add(name)
    cs.ship(folder, name, expect_changed=True)  # the previous ship: the target serves it
    # A fresh runner gets the base image from a registry too: both legs pull it (timed) from
    # the throw-away registry, where it is pushed once here, then tag it by its FROM name.
    base = _base_image(folder)
    mirror = f"{cs.target.registry.address}/bench-base:{uuid.uuid4().hex[:6]}"
    docker("tag", base, mirror)
    docker("push", mirror)
    cs.cleanup.images.add(mirror)
    result = Result()

    def pull_base(engine: Engine) -> float:
        started = time.perf_counter()
        repository, _, version = mirror.rpartition(":")
        for _ in engine.client.api.pull(repository, tag=version, stream=True, decode=True):
            pass
        name_, _, tag_ = base.rpartition(":")
        engine.client.api.tag(mirror, name_, tag=tag_)
        return time.perf_counter() - started

    def measure(cached: bool) -> Sample:
        with fresh_engine() as engine:
            base_seconds = pull_base(engine)
            if cached:
                shipment = ship(
                    folder,
                    target=cs.target,
                    name=name,
                    port=cs.app.port,
                    health_path=cs.app.health_path,
                    engine=engine,
                )
                seconds = shipment.timings["build"]
                if shipment.build is None or shipment.build.first_miss is not None:
                    raise RuntimeError(f"the registry cache missed: {shipment.build}")
            else:
                built = engine.build(
                    folder,
                    tag=f"bench-fresh/{name}:nocache",
                    no_cache=True,
                    network_mode="host",
                )
                seconds = built.seconds
            step = "build + registry cache pull" if cached else "build"
            # The ratio compares the builds; the base pull is the same setup for both legs.
            return Sample(
                seconds, {"pull base (setup, not in the ratio)": base_seconds, step: seconds}
            )

    for number in range(rounds):
        for cached in (True, False) if number % 2 == 0 else (False, True):
            sample = measure(cached)
            (result.cloudship if cached else result.cli).samples.append(sample)
            label = "registry cache" if cached else "no cache"
            print(f"  fresh round {number + 1}: {label:14} {sample.total:6.2f} s", flush=True)
    return result


def _base_image(folder: Path) -> str:
    for line in (folder / "Dockerfile").read_text().splitlines():
        if line.upper().startswith("FROM "):
            return line.split()[1]
    raise RuntimeError("no FROM in the Dockerfile")


def noop_scenario(rounds: int, work: Path, cs: CloudshipFlow, cli: CliFlow) -> Result:
    folder = cs.app.copy(work, "noop")
    suffix = uuid.uuid4().hex[:6]
    cs_name, cli_name = f"bench-cs-noop-{suffix}", f"bench-cli-noop-{suffix}"
    cs.cleanup.services.add(cs_name)
    cli_port = free_port()
    # Untimed: both services deployed from this source once, so the rounds re-ship it.
    cs.ship(folder, cs_name, expect_changed=True)
    cli.noop(folder, cli_name, cli_port)

    return interleave(
        rounds,
        lambda: cs.ship(folder, cs_name, expect_changed=False),
        lambda: cli.noop(folder, cli_name, cli_port),
        "no-op",
    )


# -- output ---------------------------------------------------------------------------------


def print_table(results: dict[str, Result]) -> bool:
    """The summary table; True when every target is met."""
    header = f"{'scenario':12} {'cloudship s':>12} {'CLI s':>8} {'ratio':>7} {'target':>8}  result"
    print("\n" + header + "\n" + "-" * len(header))
    ok = True
    for scenario, result in results.items():
        target = TARGETS[scenario]
        passed = result.ratio <= target
        ok &= passed
        print(
            f"{scenario:12} {result.cloudship.median:12.2f} {result.cli.median:8.2f} "
            f"{result.ratio:6.2f}x {'<= ' + format(target, 'g') + 'x':>8}  "
            f"{'pass' if passed else 'FAIL'}"
        )
    if "fresh" in results:
        print("fresh: 'cloudship' = build with the registry cache, 'CLI' = no-cache build")
    return ok


def print_breakdown(results: dict[str, Result]) -> None:
    for scenario, result in results.items():
        for who, series in (("cloudship", result.cloudship), ("CLI", result.cli)):
            print(f"\n{scenario} / {who}: median seconds per step")
            for step, seconds in series.step_medians().items():
                print(f"  {step:36} {seconds:6.2f}")


def print_header(args: argparse.Namespace, app: App, registry: str) -> None:
    server = docker("version", "--format", "{{.Server.Version}} (CLI {{.Client.Version}})").strip()
    print(f"cloudship ship() vs docker CLI — {args.rounds} interleaved rounds per scenario")
    print(
        f"app: {args.app or 'generated busybox httpd app'} (port {app.port}, "
        f"health {app.health_path}); registry: throw-away at {registry}"
    )
    print(
        f"docker engine {server}; peer: DOCKER_BUILDKIT={PEER['buildkit']} {PEER['docker']}; "
        f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}"
    )
    print(f"assumption: {NOOP_ASSUMPTION}")
    print(f"probe (both sides): first try at once, then every {PROBE_INTERVAL} s until HTTP 200\n")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--rounds", type=positive, default=5, help="rounds per scenario (default 5)"
    )
    parser.add_argument("--app", type=Path, help="app directory (default: a busybox httpd app)")
    parser.add_argument("--port", type=int, help="the app's port (default: cloudship.toml, 8000)")
    parser.add_argument("--health-path", help="probe path (default: cloudship.toml, /)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--docker", default=PEER["docker"], help="the peer's docker CLI (default %(default)s)"
    )
    parser.add_argument("--classic", action="store_true", help="peer builds with DOCKER_BUILDKIT=0")
    parser.add_argument(
        "--fresh-rounds", type=positive, default=1, help="rounds of 'fresh' (default 1)"
    )
    parser.add_argument(
        "--scenario", choices=["all", *TARGETS], default="all", help="which scenarios to run"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    PEER["docker"], PEER["buildkit"] = args.docker, "0" if args.classic else "1"
    cleanup = Cleanup()
    with tempfile.TemporaryDirectory(prefix="cloudship-bench-") as tmp, ThrowawayRegistry() as reg:
        work = Path(tmp)
        app = app_from_dir(args.app, args.port, args.health_path) if args.app else busybox_app(work)
        target = provider.target(ConfigFile(), {"registry": reg.address, "embedded": False})
        cs = CloudshipFlow(target, app, cleanup)
        cli = CliFlow(reg.address, app, cleanup)
        print_header(args, app, reg.address)
        results: dict[str, Result] = {}
        try:
            warm_up(work, cs, cli)
            if args.scenario in ("all", "cold"):
                results["cold"] = cold_scenario(args.rounds, work, cs, cli)
            if args.scenario in ("all", "code-change"):
                results["code-change"] = code_change_scenario(args.rounds, work, cs, cli)
            if args.scenario in ("all", "no-op"):
                results["no-op"] = noop_scenario(args.rounds, work, cs, cli)
            if args.scenario in ("all", "fresh"):
                results["fresh"] = fresh_scenario(args.fresh_rounds, work, cs, cli)
        finally:
            cleanup.run(target)
    ok = print_table(results)
    print_breakdown(results)
    print(
        "\nratio = cloudship median / CLI median; targets are informational"
        + (" (--strict: enforced)" if args.strict else "")
    )
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
