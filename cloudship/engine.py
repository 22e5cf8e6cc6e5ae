"""The Docker engine, through docker-py: build, tag, push, pull, inspect.

Builds go through BuildKit (``cloudship.buildkit``: ``POST /build?version=2``, the context served
by a ``cloudship.buildkit_session``);
the classic builder is kept only as the fallback for ``DOCKER_BUILDKIT=0`` and engines older
than API 1.39, and the choice is announced by a ``BuilderChosen`` event.

Credentials reach the engine only as an in-memory ``auth_config`` (the ``X-Registry-Auth``
header): cloudship never calls ``docker login`` and never writes ``~/.docker/config.json``.
docker-py reports push and pull failures as stream lines rather than exceptions, so every
stream is read to its end and any ``error`` line is raised.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

from cloudship.deadline import Deadline
from cloudship.errors import (
    AuthError,
    BuildError,
    CloudshipError,
    EngineError,
    PushError,
    RegistryError,
    ShipTimeoutError,
)
from cloudship.events import (
    BuilderChosen,
    BuildFinished,
    BuildStep,
    EventSink,
    PushProgress,
    ignore,
)
from cloudship.images import ImageRef, normalize_platform
from cloudship.registry import RegistryAuth

if TYPE_CHECKING:
    import docker

_T = TypeVar("_T")

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_BUILT = re.compile(r"(?:^Successfully built |^sha256:)([0-9a-f]{12,64})\s*$")
_AUTH_WORDS = ("unauthorized", "authentication required", "denied", "no basic auth")
#: registry answers worth another attempt: 5xx, 429 and cut connections (the manifest PUT that
#: dockerd sends last is among the calls this retries, by retrying the push), and a manifest
#: refused "manifest blob unknown": two pushes of the same layers at once race in the
#: registry, and on the next attempt the layers are there (distribution's MANIFEST_BLOB_UNKNOWN)
_TRANSIENT = re.compile(
    r"\b(5\d\d|429)\b|too ?many ?requests|connection reset|broken pipe|unexpected EOF|"
    r"\bEOF\b|server misbehaving|bad gateway|service unavailable|gateway time|"
    r"blob unknown",
    re.IGNORECASE,
)
PUSH_ATTEMPTS = 4
_UNREACHABLE_WORDS = ("connection refused", "no such host", "i/o timeout", "dial tcp")
# binfmt_misc entry names of Debian's qemu-user-static -> the platform they run.
_QEMU_PLATFORMS = {
    "qemu-aarch64": "linux/arm64",
    "qemu-x86_64": "linux/amd64",
    "qemu-arm": "linux/arm/v7",
    "qemu-ppc64le": "linux/ppc64le",
    "qemu-s390x": "linux/s390x",
    "qemu-riscv64": "linux/riscv64",
}
#: the threads of ``Engine._in_background`` not yet joined (list.append/pop are atomic)
_BACKGROUND: list[threading.Thread] = []
ENGINE_FIX = (
    "start the Docker engine (scripts/dev-env does it on Debian), or point DOCKER_HOST at one"
)


class _BuildTag(TypedDict):
    # A total base, not ``Required[str]``: under ``from __future__ import annotations``
    # Python 3.11 cannot see ``Required`` in a string annotation (``__required_keys__``).
    tag: str


class BuildOptions(_BuildTag, total=False):
    """What a build takes besides its context and event sink. ``Engine.build`` and every engine
    standing in for it (``cloudship.testing.memory.MemoryEngine``, the unit tests' oracle) take
    these as ``**options: Unpack[BuildOptions]``, so their signatures cannot drift apart;
    ``BuildRequest`` holds the same options with their defaults applied. ``tag`` is required."""

    dockerfile: str
    buildargs: dict[str, str] | None
    target: str | None
    platform: str | None
    labels: dict[str, str] | None
    cache_from: Sequence[str]
    no_cache: bool
    network_mode: str | None


@dataclass(frozen=True)
class BuildRequest:
    """``BuildOptions`` with the defaults applied: ``BuildRequest(**options)``. The two list
    the same names and types (tests/unit/test_build_request.py checks it)."""

    tag: str
    dockerfile: str = "Dockerfile"
    buildargs: dict[str, str] | None = None
    target: str | None = None
    platform: str | None = None
    labels: dict[str, str] | None = None
    #: images (tags or digests, never ids) whose inline cache the build reuses
    cache_from: Sequence[str] = ()
    no_cache: bool = False
    network_mode: str | None = None


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    steps: int
    cache_hits: int
    seconds: float
    first_miss: str | None = None  # the first step that was not in the cache
    builder: str = "classic"
    #: True when no build ran: the previous build's image stands for it (build_fingerprint)
    reused: bool = False


@dataclass(frozen=True)
class PushResult:
    digest: str
    layers_pushed: int
    layers_existing: int
    bytes_pushed: int


@dataclass(frozen=True)
class ImageInfo:
    id: str
    platform: str
    repo_digests: tuple[str, ...]
    exposed_ports: tuple[int, ...]

    def digest_in(self, repository: str) -> str | None:
        """The digest this image has in ``repository`` (``host/path``), if it was pushed there."""
        wanted = _familiar(repository)
        for entry in self.repo_digests:
            name, _, digest = entry.partition("@")
            if _familiar(name) == wanted:
                return digest
        return None


def _familiar(name: str) -> str:
    """The engine records Docker Hub repositories by their short name (``alice/web``, not
    ``docker.io/alice/web``; ``python``, not ``docker.io/library/python``): compare like it."""
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name.removeprefix(prefix).removeprefix("library/")
    return name


def _is_transient(message: str) -> bool:
    return bool(_TRANSIENT.search(message))


def _classify_stream_error(message: str, action: str) -> type[RegistryError] | type[AuthError]:
    lowered = message.lower()
    if any(word in lowered for word in _AUTH_WORDS):
        return AuthError
    if action == "push" and not any(word in lowered for word in _UNREACHABLE_WORDS):
        return PushError
    return RegistryError


def _rate_limit_fix() -> str:
    # cloudship.ratelimit (and the email/date parsing it needs) loads only when a limit is hit
    from cloudship.ratelimit import RATE_LIMIT_FIX

    return RATE_LIMIT_FIX


@contextmanager
def engine_errors(what: str, *, api_errors: bool = True) -> Iterator[None]:
    """The one place where docker-py/requests failures of an engine call become cloudship
    errors (stream error lines, and with ``api_errors=False`` API errors, are classified where
    streams are read)."""
    import requests
    import urllib3
    from docker.errors import APIError

    try:
        yield
    except CloudshipError:
        raise
    except (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as exc:
        raise ShipTimeoutError(
            f"the Docker engine did not answer in time during {what}",
            fix="check the engine's load; Engine(timeout=...) raises the limit",
        ) from exc
    except (
        requests.exceptions.ConnectionError,
        urllib3.exceptions.HTTPError,
        ConnectionError,
    ) as exc:
        # A stream cut half-way surfaces as urllib3's or the socket's own error, not requests'.
        raise EngineError(f"lost the Docker engine during {what}: {exc}", fix=ENGINE_FIX) from exc
    except APIError as exc:
        if not api_errors:
            raise
        raise EngineError(f"{what} failed: {exc.explanation or exc}") from exc


class Engine:
    """One Docker engine. The connection is opened on first use, not at construction.

    ``Engine.shared(host)`` gives every part of a ship (the build and a local runtime) the same
    instance, so the engine is connected to and pinged once.
    """

    @staticmethod
    @functools.cache
    def shared(base_url: str | None = None) -> Engine:
        return Engine(base_url)

    def __init__(self, base_url: str | None = None, *, timeout: int = 600) -> None:
        self._base_url = base_url
        self._timeout = timeout

    @cached_property
    def client(self) -> docker.DockerClient:
        """The docker-py client; raises ``EngineError`` when no engine answers."""
        import docker
        from docker.errors import DockerException

        try:
            if self._base_url:
                client = docker.DockerClient(base_url=self._base_url, timeout=self._timeout)
            else:
                client = docker.from_env(timeout=self._timeout)
            client.ping()
        except DockerException as exc:
            raise EngineError(
                f"the Docker engine is not reachable ({exc})", fix=ENGINE_FIX
            ) from exc
        return client

    @cached_property
    def host_platform(self) -> str:
        info = self.client.info()
        return normalize_platform(f"{info.get('OSType', 'linux')}/{info['Architecture']}")

    def emulated_platforms(self) -> frozenset[str]:
        """Platforms the engine runs through a registered binfmt handler with the F flag
        (qemu-user-static), e.g. ``{"linux/arm64"}``. Only known for an engine on this
        machine (no ``DOCKER_HOST``, or a unix socket): the handlers are the kernel's."""
        host = self._base_url or os.environ.get("DOCKER_HOST", "")
        if host and not host.startswith("unix://"):
            return frozenset()
        found = set()
        for entry, platform in _QEMU_PLATFORMS.items():
            try:
                text = Path("/proc/sys/fs/binfmt_misc", entry).read_text()
            except OSError:
                continue
            lines = text.splitlines()
            flags = next((line.split(":", 1)[1] for line in lines if line.startswith("flags:")), "")
            if lines and lines[0] == "enabled" and "F" in flags:
                found.add(platform)
        return frozenset(found - {self.host_platform})

    # -- build ---------------------------------------------------------------------------

    @cached_property
    def api_version(self) -> tuple[int, int]:
        major, _, minor = str(self.client.api.api_version).partition(".")
        return int(major), int(minor or 0)

    @cached_property
    def engine_major(self) -> int:
        """The engine's major version (20 for 20.10): its built-in Dockerfile frontend's age."""
        version = str(self.client.version().get("Version", "0"))
        found = re.match(r"\d+", version)
        return int(found[0]) if found else 0

    def builder(self) -> tuple[str, str]:
        """``("buildkit", "")`` or ``("classic", why)``: BuildKit unless ``DOCKER_BUILDKIT=0``
        (the switch the Docker CLI reads) or the engine's API predates it (1.39, Engine 18.09)."""
        if os.environ.get("DOCKER_BUILDKIT", "").strip().lower() in ("0", "false", "no"):
            return "classic", "DOCKER_BUILDKIT=0 is set"
        if self.api_version < (1, 39):
            version = ".".join(map(str, self.api_version))
            return "classic", f"the engine's API {version} predates BuildKit (1.39)"
        return "buildkit", ""

    def build(
        self, context: Path, *, on_event: EventSink = ignore, **options: Unpack[BuildOptions]
    ) -> BuildResult:
        """Build ``context`` with BuildKit (see ``cloudship.buildkit``), or the classic builder
        as a fallback, announced by a ``BuilderChosen`` event. Events follow each step;
        ``options`` are ``BuildOptions`` (``tag=`` is required)."""
        started = time.monotonic()
        build = BuildRequest(**options)
        tag, dockerfile = build.tag, build.dockerfile
        builder, reason = self.builder()
        on_event(BuilderChosen(builder=builder, reason=reason))
        if builder == "classic":
            return self._build_classic(context, build, started=started, on_event=on_event)
        from docker.errors import APIError

        from cloudship import buildkit  # on first build: it costs ~20 ms to import

        buildkit.refuse_session_only(context / dockerfile, heredocs=self.engine_major >= 23)
        request = buildkit.BuildKitRequest(
            tag=tag,
            dockerfile=dockerfile,
            # Inline cache metadata in the image config: the pushed image then serves as a
            # registry cache for a machine with an empty build cache.
            buildargs={"BUILDKIT_INLINE_CACHE": "1", **(build.buildargs or {})},
            target=build.target,
            platform=build.platform,
            labels=dict(build.labels or {}),
            cache_from=tuple(build.cache_from),
            no_cache=build.no_cache,
            network_mode=build.network_mode,
        )
        tracker = buildkit.BuildTracker(on_event)
        previous = self._raw_inspect(tag)
        try:
            with engine_errors(f"building {context}", api_errors=False):
                self._buildkit_stream(context, dockerfile, request, tracker)
        except APIError as exc:
            raise BuildError(
                f"docker build of {context} was refused: {exc.explanation or exc}",
                log_tail=[],
                fix="check the Dockerfile and the build options",
            ) from exc
        if not tracker.image_id:
            raise tracker.error("the build ended without an image id")
        image_id = self._keep_identical(tracker.image_id, previous, tag)
        steps = tracker.finished
        first_miss = next((s.instruction for s in steps if not s.cached), None)
        hits = sum(s.cached for s in steps)
        seconds = time.monotonic() - started
        on_event(
            BuildFinished(
                image_id=image_id,
                steps=len(steps),
                cache_hits=hits,
                seconds=seconds,
                first_miss=first_miss,
                platform=build.platform,
            )
        )
        return BuildResult(image_id, len(steps), hits, seconds, first_miss, "buildkit")

    def _raw_inspect(self, image: str) -> dict[str, Any] | None:
        from docker.errors import ImageNotFound

        try:
            with engine_errors(f"inspecting image {image}", api_errors=False):
                return self.client.api.inspect_image(image)  # type: ignore[no-any-return]
        except ImageNotFound:
            return None

    def _keep_identical(self, built: str, previous: dict[str, Any] | None, tag: str) -> str:
        """The previous build's image id when the new image is the same image.

        The 20.10 engine's BuildKit writes its inline cache metadata (``BUILDKIT_INLINE_CACHE``)
        in a different order on each build, so a fully cached rebuild gets a new image id with
        the same layers and config — which would push and deploy an unchanged source again.
        When everything the engine reports about the image (layers, config, platform, creation
        time) but its id is unchanged, the previous image is kept and the new one removed — on
        a thread (the engine takes up to a second to delete an image on a loaded machine, and
        nothing waits for the duplicate to go); ``settle()`` waits for it.
        """
        if previous is None or previous["Id"] == built:
            return built
        new = self._raw_inspect(built)
        volatile = ("Id", "RepoTags", "RepoDigests", "Metadata")
        if new is None or any(new.get(k) != previous.get(k) for k in new if k not in volatile):
            return built
        with engine_errors(f"keeping the unchanged image {tag}"):
            name, _, version = tag.rpartition(":")
            self.client.api.tag(previous["Id"], name, tag=version, force=True)
        self._in_background(lambda: self.client.api.remove_image(built))
        return str(previous["Id"])

    def _in_background(self, work: Callable[[], object]) -> None:
        """Tidying nothing depends on: failures are ignored (the next build tidies again)."""

        def run() -> None:
            with contextlib.suppress(Exception):
                work()

        thread = threading.Thread(target=run, name="engine-tidy", daemon=True)
        thread.start()
        _BACKGROUND.append(thread)

    @staticmethod
    def settle() -> None:
        """Wait for the tidying any engine started (``ship()`` and ``plan()`` do before they
        return, so no work of theirs outlives them)."""
        while _BACKGROUND:
            _BACKGROUND.pop().join()

    def _buildkit_stream(self, context: Path, dockerfile: str, request: Any, tracker: Any) -> None:
        """Run one BuildKit build, the context served by a session as the Docker CLI serves it
        (``cloudship.buildkit_session``: an ignored Dockerfile is read but never copied), or
        sent as a tar where this connection cannot carry a session (a TLS or ssh host)."""
        from dataclasses import replace

        from cloudship import buildkit, buildkit_session

        api = self.client.api
        excludes = buildkit.ignore_patterns(buildkit.ignore_file(context, dockerfile))
        dirs = {"context": context, "dockerfile": (context / dockerfile).parent}
        session = buildkit_session.Session(api, dirs, excludes)
        try:
            session.open()
        except buildkit_session.SessionUnavailable:
            tar = buildkit.context_tar(context, dockerfile)
            for chunk in buildkit.post_build(api, tar, request):
                tracker.feed(chunk)
            return
        try:
            for chunk in buildkit.post_build(api, None, replace(request, session=session.id)):
                tracker.feed(chunk)
        except BuildError as exc:
            if session.error is None:
                raise
            raise BuildError(
                f"sending the build context failed: {session.error}",
                log_tail=exc.log_tail,
                fix="check that every file of the build context is readable, or list the "
                "others in .dockerignore",
            ) from session.error
        finally:
            session.close()

    def _build_classic(
        self, context: Path, build: BuildRequest, *, started: float, on_event: EventSink
    ) -> BuildResult:
        from docker.errors import APIError

        try:
            with engine_errors(f"building {context}", api_errors=False):
                stream = self.client.api.build(
                    path=str(context),
                    tag=build.tag,
                    dockerfile=build.dockerfile,
                    buildargs=build.buildargs or None,
                    target=build.target,
                    platform=build.platform,
                    labels=build.labels or None,
                    cache_from=list(build.cache_from) or None,
                    nocache=build.no_cache,
                    network_mode=build.network_mode,
                    rm=True,
                    forcerm=True,
                    decode=True,
                )
                return self._read_build(stream, started, on_event)
        except APIError as exc:
            raise BuildError(
                f"docker build of {context} was refused: {exc.explanation or exc}",
                log_tail=[],
                fix="check the Dockerfile and the build options",
            ) from exc

    def _read_build(
        self, stream: Iterable[dict[str, Any]], started: float, on_event: EventSink
    ) -> BuildResult:
        tail: deque[str] = deque(maxlen=25)
        image_id: str | None = None
        step: tuple[int, int, str] | None = None
        cached = False
        steps = hits = 0

        first_miss: str | None = None

        def finish_step() -> None:
            nonlocal steps, hits, first_miss
            if step is not None:
                steps += 1
                hits += cached
                if not cached and first_miss is None:
                    first_miss = step[2]
                on_event(BuildStep(step=step[0], total=step[1], instruction=step[2], cached=cached))

        for chunk in stream:
            if "error" in chunk:
                message = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                tail.append(message.rstrip())
                raise BuildError(
                    f"docker build failed: {message.strip()}",
                    log_tail=list(tail),
                    fix="fix the failing Dockerfile step shown above, then ship again",
                )
            aux = chunk.get("aux")
            if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
                image_id = aux["ID"]
            for raw in str(chunk.get("stream", "")).splitlines():
                line = raw.rstrip()
                if not line:
                    continue
                tail.append(line)
                if match := _STEP.match(line):
                    finish_step()
                    step = (int(match[1]), int(match[2]), match[3])
                    # FROM only takes the base image from the engine's store: nothing is built.
                    cached = match[3].upper().startswith("FROM ")
                elif line.strip() == "---> Using cache":
                    cached = True
                elif (built := _BUILT.match(line)) and image_id is None:
                    image_id = built[1]
        finish_step()
        if image_id is None:
            raise BuildError(
                "docker build finished without reporting an image id", log_tail=list(tail)
            )
        if not image_id.startswith("sha256:"):
            image_id = self.client.images.get(image_id).id
        seconds = time.monotonic() - started
        on_event(
            BuildFinished(
                image_id=image_id,
                steps=steps,
                cache_hits=hits,
                seconds=seconds,
                first_miss=first_miss,
            )
        )
        return BuildResult(image_id, steps, hits, seconds, first_miss, "classic")

    # -- images --------------------------------------------------------------------------

    def inspect(self, image: str) -> ImageInfo | None:
        """Facts about a local image (by id or reference), or None when the engine lacks it."""
        from docker.errors import ImageNotFound

        try:
            with engine_errors(f"inspecting image {image}", api_errors=False):
                attrs = self.client.api.inspect_image(image)
        except ImageNotFound:
            return None
        arch = attrs.get("Architecture", "amd64")
        variant = attrs.get("Variant")
        platform = f"{attrs.get('Os', 'linux')}/{arch}" + (f"/{variant}" if variant else "")
        config = attrs.get("Config") or {}
        ports = tuple(
            sorted(
                int(spec.split("/")[0])
                for spec in (config.get("ExposedPorts") or {})
                if spec.endswith("/tcp")
            )
        )
        return ImageInfo(
            id=attrs["Id"],
            platform=normalize_platform(platform),
            repo_digests=tuple(attrs.get("RepoDigests") or ()),
            exposed_ports=ports,
        )

    def find_executables(self, image: str, names: set[str]) -> set[str]:
        """The ``names`` the image holds as executables: a path as given, a bare name looked up
        in the image's own ``PATH`` (``cloudship.image_needs``). The image's filesystem is read
        through a container that is created, never started, and removed (``HEAD
        /containers/{id}/archive``: https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Container/operation/ContainerArchiveInfo),
        so it works for images of any platform and without a shell in them."""
        import base64
        import json

        from docker.errors import NotFound

        from cloudship.image_needs import candidates

        attrs = self._raw_inspect(image)
        if attrs is None or not names:
            return set()
        env = (attrs.get("Config") or {}).get("Env") or []
        path = next((e[5:] for e in env if e.startswith("PATH=")), None)
        api = self.client.api
        found: set[str] = set()
        with engine_errors(f"reading the files of {image}"):
            # the entrypoint is never run: create needs one when the image has none
            created = api.create_container(
                image,
                entrypoint=["/cloudship-never-started"],
                network_disabled=True,
                labels={"cloudship.reads-files-of": image},
            )
            try:
                url = api.base_url + f"/v{api.api_version}/containers/{created['Id']}/archive"
                for name in sorted(names):
                    for where in candidates(name, path):
                        answer = api.head(url, params={"path": where})
                        if answer.status_code == 404:
                            continue
                        if answer.status_code != 200:
                            raise EngineError(
                                f"reading {where} in {image} failed: HTTP {answer.status_code} "
                                f"{answer.text.strip()[:200]}"
                            )
                        stat = json.loads(
                            base64.b64decode(answer.headers["X-Docker-Container-Path-Stat"])
                        )
                        # Go's os.FileMode: the permission bits, ModeDir is 1 << 31; a
                        # symlink (busybox's applets) counts, as the shell would follow it
                        if not stat["mode"] & (1 << 31) and (
                            stat["mode"] & 0o111 or stat["mode"] & (1 << 27)
                        ):
                            found.add(name)
                            break
            finally:
                with contextlib.suppress(NotFound):
                    api.remove_container(created["Id"], force=True)
        return found

    def tag(self, image_id: str, ref: ImageRef) -> None:
        with engine_errors(f"tagging {ref}"):
            self.client.api.tag(image_id, ref.name, tag=ref.tag or "latest", force=True)

    def push(
        self,
        ref: ImageRef,
        auth: RegistryAuth | None,
        *,
        on_event: EventSink = ignore,
        target: str | None = None,
        deadline: Deadline | None = None,
    ) -> PushResult:
        """Push ``ref`` (a tag); return the manifest digest the registry stored.

        Raises ``AuthError`` when the registry refuses the credentials and ``PushError`` for
        any other error line in the stream. A failure the registry may not repeat (HTTP 5xx or
        429, a reset connection) is retried with back-off: a push is idempotent (layers the
        registry has are skipped, the manifest PUT is repeated). ``deadline`` bounds the whole
        push, retries and a registry that stops answering included (``ShipTimeoutError``).
        """
        return self._retrying(
            lambda: self._push_once(ref, auth, on_event, target, deadline), ref, "push", deadline
        )

    def _push_once(
        self,
        ref: ImageRef,
        auth: RegistryAuth | None,
        on_event: EventSink,
        target: str | None,
        deadline: Deadline | None,
    ) -> PushResult:
        def start(api: docker.APIClient) -> Iterable[dict[str, Any]]:
            return api.push(  # type: ignore[no-any-return]
                ref.name,
                tag=ref.tag,
                stream=True,
                decode=True,
                auth_config=auth.docker_auth_config() if auth else None,
            )

        digest: str | None = None
        sizes: dict[str, int] = {}
        pushed: set[str] = set()
        existing: set[str] = set()
        for line in self._lines(start, ref, "push", deadline):
            layer, status = line.get("id"), str(line.get("status", ""))
            if isinstance(line.get("aux"), dict) and line["aux"].get("Digest"):
                digest = line["aux"]["Digest"]
            if not layer:
                continue
            detail = line.get("progressDetail") or {}
            if detail.get("total"):
                sizes[layer] = int(detail["total"])
            if status == "Pushed":
                pushed.add(layer)
            elif status == "Layer already exists" or status.startswith("Mounted from"):
                existing.add(layer)
            on_event(
                PushProgress(
                    target=target,
                    layer=layer,
                    status=status,
                    current=int(detail.get("current") or 0),
                    total=sizes.get(layer, 0),
                )
            )
        if digest is None:
            raise PushError(f"push of {ref} ended without a manifest digest")
        return PushResult(
            digest=digest,
            layers_pushed=len(pushed),
            layers_existing=len(existing),
            bytes_pushed=sum(sizes.get(layer, 0) for layer in pushed),
        )

    def pull(
        self, ref: ImageRef, auth: RegistryAuth | None, *, deadline: Deadline | None = None
    ) -> str:
        """Pull ``ref`` (normally ``repo@sha256:…``) from its registry; return the image id.

        Retried like :meth:`push`; ``deadline`` bounds the whole pull."""
        assert ref.digest or ref.tag, "pull an exact reference"
        return self._retrying(lambda: self._pull_once(ref, auth, deadline), ref, "pull", deadline)

    def _pull_once(
        self, ref: ImageRef, auth: RegistryAuth | None, deadline: Deadline | None
    ) -> str:
        def start(api: docker.APIClient) -> Iterable[dict[str, Any]]:
            return api.pull(  # type: ignore[no-any-return]
                ref.name,
                tag=ref.digest or ref.tag,
                stream=True,
                decode=True,
                auth_config=auth.docker_auth_config() if auth else None,
            )

        for _ in self._lines(start, ref, "pull", deadline):
            pass
        info = self.inspect(str(ref))
        if info is None:
            raise RegistryError(f"pull of {ref} finished but the engine does not have the image")
        return info.id

    def _retrying(
        self, once: Callable[[], _T], ref: ImageRef, action: str, deadline: Deadline | None
    ) -> _T:
        """``once()`` again after a transient registry failure, with bounded back-off."""
        from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, RegistryError | EngineError) and _is_transient(str(exc))

        def stop(state: RetryCallState) -> bool:
            too_many = bool(stop_after_attempt(PUSH_ATTEMPTS)(state))
            return too_many or (deadline is not None and deadline.remaining() < 1.0)

        def wait(state: RetryCallState) -> float:
            pause = min(0.5 * 2.0 ** (state.attempt_number - 1), 4.0)
            return min(pause, deadline.remaining()) if deadline else pause

        for attempt in Retrying(
            retry=retry_if_exception(transient), stop=stop, wait=wait, reraise=True
        ):
            with attempt:
                if deadline is not None:
                    deadline.check(f"{action} of {ref}")
                return once()
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _streaming_api(self, deadline: Deadline | None) -> docker.APIClient:
        """A client whose socket timeout is what is left of ``deadline``: a registry that stops
        answering makes the engine's stream go quiet, and a quiet stream must not outlive the
        ship (the shared client waits ``timeout``, 600 s, per read)."""
        if deadline is None:
            return self.client.api
        import docker
        from docker.utils import kwargs_from_env

        kwargs: dict[str, Any] = (
            {"base_url": self._base_url} if self._base_url else kwargs_from_env()
        )
        return docker.APIClient(
            **kwargs,
            timeout=max(0.5, deadline.remaining()),
            version=self.client.api.api_version,
        )

    def _lines(
        self,
        start: Callable[[docker.APIClient], Iterable[dict[str, Any]]],
        ref: ImageRef,
        action: str,
        deadline: Deadline | None,
    ) -> Iterator[dict[str, Any]]:
        """Start the stream and yield every line, raising on the first error line (docker-py
        does not)."""
        from docker.errors import APIError

        api = self._streaming_api(deadline)
        try:
            with engine_errors(f"{action} of {ref}", api_errors=False):
                for line in self._checked(start(api), ref, action):
                    if deadline is not None:
                        deadline.check(f"{action} of {ref}")
                    yield line
        except TimeoutError as exc:
            if deadline is not None and deadline.remaining() < 1.0:
                raise deadline.error(f"{action} of {ref}") from exc
            raise
        except APIError as exc:
            text = str(exc.explanation or exc)
            kind = _classify_stream_error(text, action)
            if "toomanyrequests" in text.lower():  # Docker Hub's pull limit
                raise RegistryError(f"{action} of {ref}: {text}", fix=_rate_limit_fix()) from exc
            raise kind(f"{action} of {ref}: {text}") from exc
        finally:
            if api is not self.client.api:
                api.close()

    @staticmethod
    def _checked(
        stream: Iterable[dict[str, Any]], ref: ImageRef, action: str
    ) -> Iterator[dict[str, Any]]:
        for line in stream:
            if "error" in line or "errorDetail" in line:
                message = (line.get("errorDetail") or {}).get("message") or line.get("error")
                kind = _classify_stream_error(str(message), action)
                fix = {
                    AuthError: "check the registry credentials (they may have expired)",
                    RegistryError: f"check that the registry {ref.domain} is running",
                }.get(kind, "see the registry's message above")
                if "toomanyrequests" in str(message).lower():  # Docker Hub's pull limit
                    kind, fix = RegistryError, _rate_limit_fix()
                raise kind(f"{action} of {ref}: {message}", fix=fix)
            yield line
