"""Three targets in one ship() vs. the slowest of the three shipped alone, side by side.

Each round ships new content (a nonce file) so every run builds, pushes and deploys for real:
  single: ship(app, target_i) for each of the three targets, one after the other,
  multi:  ship(app, [t1, t2, t3]): one build, three pushes and three deploys at once.
The claim: multi ≤ 1.3x the slowest single. Prints medians and the ratio; exit 0 unless
--strict and the target is missed.

Default: three ``local`` targets, each on its own throw-away registry. ``--mix``: one
``local`` target, one ``aws`` target (ECS on moto in server mode, pushing to a registry that
accepts moto's ECR login) and one ``azure`` target (the HTTPS ARM fake, pushing to the
ACR-style token registry; the fake runs each revision on this machine's engine), wired as
cloudship.testing's pytest fixtures wire them.

    .venv/bin/python benchmarks/multi_target.py [--rounds 5] [--mix] [--strict]
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cloudship import ship
from cloudship.config import ConfigFile
from cloudship.shipment import Shipment
from cloudship.targets import Target
from cloudship.testing import ThrowawayRegistry
from cloudship_local import provider

if TYPE_CHECKING:
    from cloudship_aws.testing import MotoServer

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


@contextmanager
def cloudship_moto() -> Iterator[MotoServer]:
    """cloudship_aws.testing's ``cloudship_moto`` fixture, outside pytest: a ThreadedMotoServer
    on 127.0.0.1 with MOTO_IAM_LOAD_MANAGED_POLICIES and MOTO_ECS_SERVICE_RUNNING set (a
    one-task service completes its rollout; moto never starts tasks)."""
    from moto.server import ThreadedMotoServer

    from cloudship.testing.registry import free_port
    from cloudship_aws.testing import MotoServer

    wanted = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "MOTO_ECS_SERVICE_RUNNING": "1"}
    with ExitStack() as stack:
        # moto reads them in this process, per request; like the fixture, keep values already set
        stack.enter_context(environment({k: os.environ.get(k, v) for k, v in wanted.items()}))
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        stack.callback(server.stop)
        yield MotoServer(endpoint=f"http://127.0.0.1:{port}", server=server)


@contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables; restore them on exit."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def aws_environment(endpoint: str, folder: Path) -> dict[str, str | None]:
    """What the ``cloudship_aws_env`` fixture sets: boto3 pointed at moto, fake credentials, no real
    profile or config file."""
    return {
        "AWS_PROFILE": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_SECURITY_TOKEN": None,
        "AWS_ROLE_ARN": None,
        "AWS_CONFIG_FILE": str(folder / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "aws-credentials"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextmanager
def azure_fakes() -> Iterator[Target]:
    """What ``cloudship_azure_credential``, ``cloudship_acr_token_registry``,
    ``cloudship_fake_arm`` and ``cloudship_azure_target``
    do together: a static AAD token, the ACR-style token registry accepting it, the HTTPS ARM
    fake whose registry ``ACR_NAME`` logs in there and which runs revisions on the local
    engine; then ``AzureTargetFactory.target()`` (poll_interval 0.05, probes via the
    fake's gateway)."""
    from cloudship.testing.token_registry import TokenRegistry
    from cloudship_azure.fake import FakeArmServer
    from cloudship_azure.fake.runner import LocalEngineRunner
    from cloudship_azure.testing import ACR_NAME, AzureTargetFactory, StaticTokenCredential

    credential = StaticTokenCredential(f"fake-aad-{secrets.token_urlsafe(16)}")
    token = credential.get_token("https://management.azure.com/.default").token
    puller = {"username": "fake-arm-puller", "password": secrets.token_urlsafe(16)}
    with ExitStack() as stack:
        registry = stack.enter_context(
            TokenRegistry(
                users={puller["username"]: puller["password"]},
                aad_tokens={token},
                realm_path="/oauth2/token",
                issuer="Azure Container Registry",
            )
        )

        def pull_auth(server: str) -> dict[str, str] | None:
            return {**puller, "serveraddress": server} if server == registry.address else None

        runner = LocalEngineRunner(pull_auth)  # its gateway already listens
        stack.callback(runner.close)  # its revision containers, its gateway (again: harmless)
        arm = FakeArmServer(
            tokens={token}, login_servers={ACR_NAME: registry.address}, runner=runner
        )
        stack.enter_context(arm)  # stopping it closes the runner too
        yield AzureTargetFactory(arm, runner, credential).target()


@contextmanager
def mix_targets(folder: Path) -> Iterator[list[Target]]:
    """One ``local``, one ``aws`` (moto) and one ``azure`` (ARM fake) target."""
    from cloudship_aws import provider as aws_provider
    from cloudship_aws.testing import MOTO_ECR_LOGIN

    with ExitStack() as stack:
        local_registry = stack.enter_context(ThrowawayRegistry())
        local = provider.target(
            ConfigFile(),
            {"registry": local_registry.address, "embedded": False, "project": "benchmix"},
        )
        moto = stack.enter_context(cloudship_moto())
        stack.enter_context(environment(aws_environment(moto.endpoint, folder)))
        moto.reset()
        user, password = MOTO_ECR_LOGIN
        cloudship_ecr_registry = stack.enter_context(ThrowawayRegistry(users={user: password}))
        aws = aws_provider.target(
            ConfigFile(), {"registry": cloudship_ecr_registry.address, "poll_interval": 0.05}
        )
        azure = stack.enter_context(azure_fakes())
        yield [local, aws, azure]


def timed_ship(app: Path, target: Target | list[Target], name: str) -> tuple[float, list[Shipment]]:
    new_content(app)
    started = time.monotonic()
    if isinstance(target, list):
        many: list[str | Target] = list(target)  # ship() takes list[str | Target] (invariant)
        shipped = ship(app, many, name=name)
    else:
        shipped = [ship(app, target, name=name)]
    return time.monotonic() - started, shipped


def phase_table(
    targets: list[Target], alone: dict[str, list[Shipment]], together: dict[str, list[Shipment]]
) -> None:
    """Median push and deploy seconds per target, shipped alone vs. all three at once."""
    print(f"\n{'target':<8} {'phase':<7} {'alone s':>8} {'at once s':>10}")
    for target in targets:
        for phase in ("push", "deploy", "total"):
            a = statistics.median(s.timings.get(phase, 0.0) for s in alone[target.name])
            b = statistics.median(s.timings.get(phase, 0.0) for s in together[target.name])
            print(f"{target.name:<8} {phase:<7} {a:>8.2f} {b:>10.2f}")
    builds = [s.timings.get("build", 0.0) for t in targets for s in together[t.name]]
    print(f"(build, once per ship, median at once: {statistics.median(builds):.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--strict", action="store_true")
    parser.add_argument(
        "--mix", action="store_true", help="one local + one aws (moto) + one azure (ARM fake)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="cloudship-bench-multi-"))
    app = make_app(folder / "app")
    run = uuid.uuid4().hex[:6]  # service names unique to this run
    services: list[tuple[Target, str]] = []
    slowest: list[float] = []
    multi: list[float] = []
    alone: dict[str, list[Shipment]] = {}
    together: dict[str, list[Shipment]] = {}
    try:
        with mix_targets(folder) if args.mix else three_targets() as targets:
            try:
                print("targets: " + ", ".join(t.name for t in targets))
                services += [(t, f"warmup-{run}") for t in targets]
                timed_ship(app, targets, f"warmup-{run}")  # untimed: imports, connections
                for round_ in range(1, args.rounds + 1):
                    singles = []
                    name = f"single-{round_}-{run}"
                    for target in targets:
                        services.append((target, name))
                        elapsed, shipped = timed_ship(app, target, name)
                        singles.append(elapsed)
                        alone.setdefault(target.name, []).extend(shipped)
                    name = f"multi-{round_}-{run}"
                    services += [(t, name) for t in targets]
                    elapsed, shipped = timed_ship(app, targets, name)
                    multi.append(elapsed)
                    for one in shipped:
                        together.setdefault(one.target, []).append(one)
                    slowest.append(max(singles))
                    print(
                        f"round {round_}: singles "
                        + ", ".join(
                            f"{t.name} {s:.2f}" for t, s in zip(targets, singles, strict=True)
                        )
                        + f" s; three at once {multi[-1]:.2f} s"
                    )
            finally:
                for target, name in services:
                    try:
                        target.runtime.destroy(name)
                    except Exception as exc:  # keep cleaning up the others
                        print(f"could not destroy {name} on {target.name}: {exc}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    phase_table(targets, alone, together)

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
