"""BuildKit builds on the real engine: what ``docker build`` does today, through ``ship()``.

Every image and tag a test makes is removed by the ``images`` fixture; cache mounts stay in
the engine's build cache (the shared engine's cache is never pruned here).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cloudship import plan, ship
from cloudship.engine import Engine
from cloudship.errors import BuildError, ConfigError, PlatformMismatchError
from cloudship.events import (
    BuilderChosen,
    BuildLog,
    BuildStep,
    BuildStepStarted,
    DockerfileWarning,
    Event,
    Notice,
)
from cloudship.images import ImageRef
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import HTTPD

ARM64_BASE = "cloudship-stand-in/busybox:arm64"  # scripts/dev-env builds it


class Images:
    """Removes, at the end, every tag that names one of the test's unique names."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.names: list[str] = []

    def unique(self, base: str) -> str:
        name = f"{base}-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        return name

    def cleanup(self) -> None:
        # The low-level list: images.list() inspects every image of the shared engine, and
        # one removed meanwhile (by another test or worker) fails that inspect.
        for image in self.engine.client.api.images():
            for tag in image.get("RepoTags") or []:
                if any(name in tag for name in self.names):
                    self.engine.client.images.remove(tag)


@pytest.fixture
def images(
    cloudship_engine: Engine, cloudship_local_target: LocalTargetFactory
) -> Iterator[Images]:
    made = Images(cloudship_engine)
    yield made
    made.names += cloudship_local_target._names  # the services' pushed tags (host:port/name:tag)
    cloudship_local_target.cleanup()  # first the services' containers, which use the images
    made.cleanup()


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def build(engine: Engine, folder: Path, images: Images, **kwargs: object) -> list[Event]:
    events: list[Event] = []
    tag = f"cloudship-test/{images.unique('build')}:1"
    engine.build(folder, tag=tag, on_event=events.append, **kwargs)  # type: ignore[arg-type]
    return events


def run(engine: Engine, image: str, command: str, platform: str | None = None) -> str:
    output = engine.client.containers.run(
        image, ["sh", "-c", command], remove=True, platform=platform
    )
    return bytes(output).decode()


def test_independent_stages_run_concurrently(
    tmp_path: Path, cloudship_engine: Engine, images: Images
) -> None:
    token = uuid.uuid4().hex
    folder = write(
        tmp_path,
        {
            "Dockerfile": f"""\
FROM busybox:latest AS left
RUN sleep 1; echo left-{token} > /left
FROM busybox:latest AS right
RUN sleep 1; echo right-{token} > /right
FROM busybox:latest
COPY --from=left /left /
COPY --from=right /right /
"""
        },
    )
    events = build(cloudship_engine, folder, images)
    started = {
        e.stage: i
        for i, e in enumerate(events)
        if isinstance(e, BuildStepStarted) and "sleep" in e.instruction
    }
    ended = {
        e.stage: i
        for i, e in enumerate(events)
        if isinstance(e, BuildStep) and "sleep" in e.instruction
    }
    assert set(started) == set(ended) == {"left", "right"}
    # both stages' RUN started before either finished: BuildKit ran them side by side
    assert max(started.values()) < min(ended.values())


def test_cache_mount_persists_between_builds(
    tmp_path: Path, cloudship_engine: Engine, images: Images
) -> None:
    cache_id = uuid.uuid4().hex  # a cache of this test's own in the engine's build cache
    dockerfile = """\
FROM busybox:latest
ARG ROUND
RUN --mount=type=cache,id={cache},target=/cache \\
    echo "round $ROUND saw: $(cat /cache/seen 2>/dev/null || echo nothing)"; \\
    echo $ROUND >> /cache/seen
"""
    folder = write(tmp_path, {"Dockerfile": dockerfile.format(cache=cache_id)})
    first = build(cloudship_engine, folder, images, buildargs={"ROUND": "1"})
    second = build(cloudship_engine, folder, images, buildargs={"ROUND": "2"})
    assert "round 1 saw: nothing" in [e.line for e in first if isinstance(e, BuildLog)]
    assert "round 2 saw: 1" in [e.line for e in second if isinstance(e, BuildLog)]


def test_copy_chmod(tmp_path: Path, cloudship_engine: Engine, images: Images) -> None:
    folder = write(
        tmp_path,
        {
            "Dockerfile": "FROM busybox:latest\nCOPY --chmod=755 run.sh /run.sh\n",
            "run.sh": "echo ok\n",
        },
    )
    (folder / "run.sh").chmod(0o600)
    tag = f"cloudship-test/{images.unique('chmod')}:1"
    cloudship_engine.build(folder, tag=tag)
    assert run(cloudship_engine, tag, "stat -c %a /run.sh; /run.sh").split() == ["755", "ok"]


REFERENCE_CLI = "/usr/bin/docker"  # Debian's 20.10 CLI: BuildKit built in, with a session


def reference_listing(folder: Path, tag: str, dockerfile: str = "Dockerfile") -> set[str]:
    """What ``DOCKER_BUILDKIT=1 docker build`` puts in /ctx: the behaviour to match."""
    import subprocess

    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    subprocess.run(
        [REFERENCE_CLI, "build", "-q", "-f", str(folder / dockerfile), "-t", tag, str(folder)],
        check=True,
        capture_output=True,
        env=env,
    )
    found = subprocess.run(
        [REFERENCE_CLI, "run", "--rm", tag, "sh", "-c", "cd /ctx && find . -type f"],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(found.stdout.split())


def test_dockerignore_as_buildkit_reads_it(
    tmp_path: Path, cloudship_engine: Engine, images: Images
) -> None:
    files = {
        "Dockerfile": "FROM busybox:latest\nCOPY . /ctx\n",
        ".dockerignore": "# comment\n*.log\n**/secret*\n!keep.log\n/build\n",
        "app.py": "",
        "debug.log": "",
        "keep.log": "",
        "deep/er/secret.txt": "",
        "deep/er/ok.txt": "",
        "build/out.bin": "",
    }
    folder = write(tmp_path / "ctx", files)
    tag = f"cloudship-test/{images.unique('ignore')}:1"
    cloudship_engine.build(folder, tag=tag)
    listed = set(run(cloudship_engine, tag, "cd /ctx && find . -type f").split())
    assert listed == {
        "./Dockerfile",
        "./.dockerignore",
        "./app.py",
        "./keep.log",
        "./deep/er/ok.txt",
    }

    # BuildKit's <Dockerfile>.dockerignore beside the Dockerfile wins over .dockerignore
    write(
        folder,
        {
            "web.Dockerfile": "FROM busybox:latest\nCOPY . /ctx\n",
            "web.Dockerfile.dockerignore": "app.py\n",
        },
    )
    cloudship_engine.build(folder, tag=tag, dockerfile="web.Dockerfile")
    listed = set(run(cloudship_engine, tag, "cd /ctx && find . -type f").split())
    assert "./app.py" not in listed and "./debug.log" in listed


@pytest.mark.skipif(not Path(REFERENCE_CLI).exists(), reason="needs Debian's 20.10 docker CLI")
@pytest.mark.parametrize("dockerfile", ["Dockerfile", "docker/web.Dockerfile"])
def test_an_ignored_dockerfile_builds_but_is_not_copied(
    tmp_path: Path, cloudship_engine: Engine, images: Images, dockerfile: str
) -> None:
    """Docker: "the Dockerfile and .dockerignore are still sent ... but ADD and COPY do not copy
    them" (https://docs.docker.com/build/concepts/context/#dockerignore-files)."""
    files = {
        dockerfile: "FROM busybox:latest\nCOPY . /ctx\n",
        ".dockerignore": f"{dockerfile}\n.dockerignore\n*.secret\n",
        "app.py": "",
        "key.secret": "",
        "docker/readme.txt": "",
    }
    folder = write(tmp_path / "ctx", files)
    tag = f"cloudship-test/{images.unique('ignored-dockerfile')}:1"
    cloudship_engine.build(folder, tag=tag, dockerfile=dockerfile)
    listed = set(run(cloudship_engine, tag, "cd /ctx && find . -type f").split())
    assert listed == {"./app.py", "./docker/readme.txt"}
    reference = f"cloudship-test/{images.unique('ignored-dockerfile-cli')}:1"
    assert listed == reference_listing(folder, reference, dockerfile)


def test_failing_step_shows_its_output(
    tmp_path: Path, cloudship_engine: Engine, images: Images
) -> None:
    folder = write(
        tmp_path,
        {
            "Dockerfile": "FROM busybox:latest\nRUN echo ok > /ok\n"
            "RUN echo compiling; echo 'fatal: no such module' >&2; exit 4\n"
        },
    )
    with pytest.raises(BuildError) as info:
        build(cloudship_engine, folder, images, no_cache=True)
    text = str(info.value)
    assert "step 3/3 failed: RUN echo compiling" in text and "exit code: 4" in text
    assert set(info.value.log_tail) == {"compiling", "fatal: no such module"}


@pytest.mark.parametrize(
    ("dockerfile", "says"),
    [
        (
            "FROM busybox:latest\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\n",
            "type=secret needs a BuildKit session that hands over secrets",
        ),
        (
            "FROM busybox:latest\nRUN --mount=type=ssh true\n",
            "type=ssh needs a BuildKit session that hands over an ssh agent",
        ),
        ("# syntax=docker/dockerfile:1.7\nFROM busybox:latest\n", "another Dockerfile frontend"),
        ("FROM busybox:latest\nRUN <<EOF\necho hi\nEOF\n", "heredoc"),
    ],
)
def test_what_needs_a_session_or_frontend_is_refused_before_building(
    tmp_path: Path, cloudship_engine: Engine, images: Images, dockerfile: str, says: str
) -> None:
    if "heredoc" in says and cloudship_engine.engine_major >= 23:
        pytest.skip("this engine's frontend builds heredocs")  # the refusal is for older ones
    folder = write(tmp_path, {"Dockerfile": dockerfile})
    events: list[Event] = []
    with pytest.raises(BuildError, match=says) as info:
        cloudship_engine.build(
            folder, tag=f"cloudship-test/{images.unique('s')}:1", on_event=events.append
        )
    assert "build output" not in str(info.value)  # no empty output block
    assert not any(isinstance(e, BuildStepStarted) for e in events)


def _emulation_or_fail(engine: Engine) -> None:
    if "linux/arm64" in engine.emulated_platforms() and engine.inspect(ARM64_BASE):
        return
    why = "arm64 emulation or the arm64 stand-in is missing (run scripts/dev-env)"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def test_arm64_build_runs_under_emulation(
    tmp_path: Path,
    cloudship_engine: Engine,
    images: Images,
    cloudship_local_target: LocalTargetFactory,
) -> None:
    _emulation_or_fail(cloudship_engine)
    body = uuid.uuid4().hex
    folder = write(
        tmp_path / images.unique("arm"),
        {
            "Dockerfile": f"FROM {ARM64_BASE}\nCOPY www /www\nRUN uname -m > /www/arch\n"
            f"EXPOSE 8000\nCMD {HTTPD}\n",
            "www/index.html": body + "\n",
        },
    )
    target, name = cloudship_local_target.target(), cloudship_local_target.name("arm")
    assert "linux/arm64" in target.runtime.supported_platforms()
    shipped = ship(folder, target, name=name, platform="linux/arm64", timeout=60)
    assert shipped.build is not None and shipped.build.platform == "linux/arm64"
    assert httpx.get(f"{shipped.url}/arch").text == "aarch64\n"  # uname ran under qemu
    assert httpx.get(f"{shipped.url}/").text == body + "\n"


def test_a_platform_the_target_cannot_run_is_refused_before_building(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    folder = write(tmp_path, {"Dockerfile": "FROM busybox:latest\nRUN false\n"})
    with pytest.raises(PlatformMismatchError, match="linux/s390x"):
        ship(
            folder,
            cloudship_local_target.target(),
            name=cloudship_local_target.name(),
            platform="linux/s390x",
        )


LAYER_ORDER = """\
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-index -r requirements.txt
EXPOSE 8000
CMD ["python", "-m", "http.server", "8000"]
"""


def test_layer_order_warning_in_plan_and_cli_json(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, images: Images
) -> None:
    folder = write(
        tmp_path / images.unique("order"),
        {"Dockerfile": LAYER_ORDER, "requirements.txt": "# nothing to install\n", "main.py": ""},
    )
    events: list[Event] = []
    planned = plan(
        folder,
        cloudship_local_target.target(),
        name=cloudship_local_target.name(),
        on_event=events.append,
    )
    assert [(w.code, w.line) for w in planned.warnings] == [("layer-order", 3)]
    assert "pip install on line 4" in planned.warnings[0].message
    assert any(isinstance(e, DockerfileWarning) and e.line == 3 for e in events)

    from cloudship.cli import app

    result = CliRunner().invoke(
        app,
        [
            "plan",
            str(folder),
            "--json",
            "--name",
            cloudship_local_target.name(),
            "--set",
            f"registry={cloudship_local_target.registry.address}",
            "--set",
            "embedded=false",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["warnings"][0]["code"] == "layer-order" and body["warnings"][0]["line"] == 3


def test_the_guides_order_gets_no_warning_and_names_the_first_miss(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, images: Images
) -> None:
    good = LAYER_ORDER.replace(
        "COPY . .\nRUN pip install --no-index -r requirements.txt",
        "COPY requirements.txt .\nRUN pip install --no-index -r requirements.txt\nCOPY . .",
    )
    folder = write(
        tmp_path / images.unique("guide"),
        {"Dockerfile": good, "requirements.txt": "# nothing to install\n", "main.py": "# v1"},
    )
    target, name = cloudship_local_target.target(), cloudship_local_target.name()
    first = ship(folder, target, name=name)
    assert first.warnings == []
    (folder / "main.py").write_text(f"# {uuid.uuid4()}")  # never built before, anywhere
    second = ship(folder, target, name=name)
    assert second.build is not None and second.build.first_miss == "COPY . ."
    assert second.push is not None and 0 < second.push.bytes_pushed < 10_000  # only the code layer


def test_classic_fallback_is_announced(
    tmp_path: Path, cloudship_engine: Engine, images: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    folder = write(tmp_path, {"Dockerfile": "FROM busybox:latest\nRUN echo classic\n"})
    events = build(cloudship_engine, folder, images)
    chosen = [e for e in events if isinstance(e, BuilderChosen)]
    assert [(c.builder, c.reason) for c in chosen] == [("classic", "DOCKER_BUILDKIT=0 is set")]
    assert [e.instruction for e in events if isinstance(e, BuildStep)][-1] == "RUN echo classic"


@pytest.mark.slow
def test_registry_cache_on_a_fresh_engine(
    tmp_path: Path,
    cloudship_local_target: LocalTargetFactory,
    cloudship_auth_registry: object,
    images: Images,
) -> None:
    """A CI runner's empty engine reuses the layers of the image the target serves, pulled
    from a registry that needs a login (credentials in memory only)."""
    from cloudship.testing.fresh_engine import fresh_engine

    registry = cloudship_auth_registry({"ci": "s3cret"})  # type: ignore[operator]
    token = uuid.uuid4().hex
    folder = write(
        tmp_path / images.unique("fresh"),
        {
            "Dockerfile": f"FROM busybox:latest\nRUN sleep 2; echo deps-{token} > /deps\n"
            f"COPY www /www\nEXPOSE 8000\nCMD {HTTPD}\n",
            "www/index.html": "v1\n",
        },
    )
    target = cloudship_local_target.target(
        registry=registry.address, username="ci", password="s3cret"
    )
    name = cloudship_local_target.name("fresh")
    first = ship(folder, target, name=name)
    assert first.build is not None and first.build.cache_hits < first.build.steps

    try:
        with fresh_engine(load=("busybox:latest",)) as engine:
            events: list[Event] = []
            again = ship(folder, target, name=name, engine=engine, on_event=events.append)
    except RuntimeError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    steps = {e.instruction: e.cached for e in events if isinstance(e, BuildStep)}
    assert steps[f"RUN sleep 2; echo deps-{token} > /deps"] is True
    assert any(isinstance(e, Notice) and "build cache: reusing" in e.message for e in events)
    assert again.digest == first.digest and not again.changed


def test_one_tag_over_several_platforms_is_an_index(
    tmp_path: Path,
    cloudship_engine: Engine,
    images: Images,
    cloudship_local_target: LocalTargetFactory,
) -> None:
    """Two targets of other platforms on one registry: each pushes ``<tag>-<os>-<arch>`` and
    deploys its own digest; the tag itself is a manifest list of both, as buildx leaves it."""
    import dataclasses

    from cloudship.distribution import DistributionClient

    _emulation_or_fail(cloudship_engine)
    base = images.unique("base")
    cloudship_engine.tag("busybox:latest", ImageRef.parse(f"cloudship-test/{base}:amd64"))
    cloudship_engine.tag(ARM64_BASE, ImageRef.parse(f"cloudship-test/{base}:arm64"))
    folder = write(
        tmp_path / images.unique("multi"),
        {
            # BuildKit's automatic TARGETARCH, usable in FROM undeclared (BuildKit 0.8 blanks it
            # when the global scope declares it)
            "Dockerfile": f"FROM cloudship-test/{base}:$TARGETARCH\n"
            f"RUN mkdir /www && uname -m > /www/arch && echo ok > /www/index.html\n"
            f"EXPOSE 8000\nCMD {HTTPD}\n",
        },
    )
    amd = dataclasses.replace(
        cloudship_local_target.target(project="amd", platform="linux/amd64"), name="amd"
    )
    arm = dataclasses.replace(
        cloudship_local_target.target(project="arm", platform="linux/arm64"), name="arm"
    )
    name = cloudship_local_target.name("multi")
    planned = plan(folder, [amd, arm], name=name, tag="v1")
    assert [a for p in planned for a in p.actions if "image index" in a] == [
        f"write v1 as an image index of every platform pushed to {amd.registry.address}"
    ] * 2
    assert [p.image.rpartition(":")[2] for p in planned] == ["v1-linux-amd64", "v1-linux-arm64"]
    shipped = ship(folder, [amd, arm], name=name, tag="v1", timeout=60)
    by_target = {s.target: s for s in shipped}
    assert httpx.get(f"{by_target['amd'].url}/arch").text == "x86_64\n"
    assert httpx.get(f"{by_target['arm'].url}/arch").text == "aarch64\n"

    registry = DistributionClient(cloudship_local_target.registry.address)
    media_type, body = registry.manifest(name, "v1")
    assert media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    listed = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in json.loads(body)["manifests"]
    }
    assert listed == {
        "linux/amd64": by_target["amd"].digest,
        "linux/arm64": by_target["arm"].digest,
    }
    assert by_target["amd"].digest != by_target["arm"].digest
    assert registry.manifest_digest(name, "v1-linux-arm64") == by_target["arm"].digest
    # the docker CLI's own reader of the index agrees (distribution's manifest-list parser)
    inspected = cloudship_engine.client.api.inspect_distribution(
        f"{cloudship_local_target.registry.address}/{name}:v1"
    )
    assert {f"{p['os']}/{p['architecture']}" for p in inspected["Platforms"]} == set(listed)


def test_a_local_platform_the_engine_cannot_run_is_a_config_error(
    cloudship_engine: Engine, cloudship_local_target: LocalTargetFactory
) -> None:
    runs = {cloudship_engine.host_platform} | cloudship_engine.emulated_platforms()
    foreign = next(p for p in ("linux/s390x", "linux/riscv64", "linux/ppc64le") if p not in runs)
    target = cloudship_local_target.target(platform=foreign)
    with pytest.raises(ConfigError, match=f"platform='{foreign}'"):
        target.runtime.supported_platforms()


def test_find_executables_reads_the_image_files_by_its_path_and_leaves_nothing(
    cloudship_engine: Engine,
) -> None:
    """busybox's applets are symlinks in /bin and /usr/bin; a directory is no executable and a
    path given with a slash is taken as it is. The container used to read the files is gone."""
    image = f"cloudship-test-needs-{uuid.uuid4().hex[:8]}:latest"
    cloudship_engine.client.images.get("busybox:latest").tag(image)
    try:
        found = cloudship_engine.find_executables(
            image, {"/bin/sh", "wget", "curl", "bin", "/bin", "/bin/nothing"}
        )
        assert found == {"/bin/sh", "wget"}
        left = cloudship_engine.client.containers.list(
            all=True, filters={"label": f"cloudship.reads-files-of={image}"}
        )
        assert left == []
    finally:
        cloudship_engine.client.images.remove(image)
