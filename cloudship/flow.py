"""What ``cloudship.api``'s functions run (the public signatures and docs are there).

``cloudship.api`` imports this module on the first call, so ``from cloudship import ship``
loads neither pydantic nor docker-py. ``ship`` reads top to bottom like the flow it runs::

    source → build (layer cache) → platform check → spec check → registry ready + credentials
           → skip push if the registry has the digest → push → deploy by digest → Shipment

Everything that can be refused (bad input, a platform the runtime cannot run, a spec it cannot
honour) is refused before anything remote is created or pushed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from pydantic import SecretStr, ValidationError

from cloudship import build_fingerprint, dockerfile_lint
from cloudship.deadline import Deadline
from cloudship.engine import BuildOptions, BuildResult, Engine, ImageInfo
from cloudship.errors import (
    CloudshipError,
    ConfigError,
    DeployError,
    MultiTargetError,
    PlatformMismatchError,
    ServiceNotFoundError,
    SourceError,
)
from cloudship.events import DockerfileWarning, Event, EventSink, Notice, PushFinished, ignore
from cloudship.images import ImageRef, normalize_platform
from cloudship.options import DEFAULT_TIMEOUT, Options, ShipOptions, read_options
from cloudship.revisions import service_not_found
from cloudship.runtime import Deployment, ServiceSpec, ServiceStatus, service_name
from cloudship.shipment import BuildSummary, BuildWarning, PushSummary, Shipment, ShipPlan
from cloudship.sources import BuildSource, ImageSource, content_tag, detect, git_tag
from cloudship.targets import Target, resolve
from cloudship.validation import check_service_arguments

if TYPE_CHECKING:  # pydantic-settings costs ~0.14 s to import: loaded by the first ship()
    from cloudship.config import AppSettings, ConfigFile

DEFAULT_TARGET = "local"


@dataclass
class _Timer:
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - started, 3)


@dataclass(frozen=True)
class _LocalImage:
    """The image to ship as the engine has it (built or given)."""

    info: ImageInfo
    tag: str
    build: BuildResult | None
    warnings: tuple[BuildWarning, ...] = ()


def _target(target: str | Target | None, config: ConfigFile, settings: dict[str, Any]) -> Target:
    chosen = target or os.environ.get("CLOUDSHIP_TARGET") or config.target or DEFAULT_TARGET
    return resolve(chosen, config, settings)


def _local_image(
    source: BuildSource | ImageSource,
    app: AppSettings,
    *,
    tag: str | None,
    platform: str | None,
    engine: Engine,
    on_event: EventSink,
    no_cache: bool = False,
    cache_targets: Sequence[Target] = (),
    service: str | None = None,
    force: bool = False,
) -> _LocalImage:
    """Build the source for ``platform`` (or take the given image). A build first checks the
    Dockerfile (``Shipment.warnings``) and, on an engine that never built this service, asks
    ``cache_targets`` for the service's previous image to reuse its layers. Unless ``force``,
    an unchanged source is not built again (``cloudship.build_fingerprint``)."""
    if isinstance(source, BuildSource):
        warnings = tuple(
            BuildWarning(code=w.code, line=w.line, message=w.message)
            for w in dockerfile_lint.check(source.path / source.dockerfile)
        )
        for warning in warnings:
            on_event(
                DockerfileWarning(code=warning.code, line=warning.line, message=warning.message)
            )
        # The directory's name, not the service's (that is checked after the build), plus a
        # hash of its path: two projects in folders of the same name must not share the tag,
        # which names the engine's previous build of this source (see Engine.build).
        name = source.default_name
        where = hashlib.sha256(str(source.path.resolve()).encode()).hexdigest()[:8]
        suffix = (
            "latest" if platform in (None, engine.host_platform) else platform.replace("/", "-")
        )
        build_tag = f"cloudship-build/{name}-{where}:{suffix}"
        options: BuildOptions = {
            "tag": build_tag,
            "dockerfile": source.dockerfile,
            "buildargs": app.build_args,
            "target": app.build_target,
            "platform": platform,
        }
        # Nothing the build cache keys on changed since the engine built build_tag: no build.
        fingerprint = build_fingerprint.check(
            engine, source.path, options, reuse=not (no_cache or force)
        )
        build = fingerprint.reused(engine, platform, on_event) or _build(
            source, options, engine, on_event, no_cache, cache_targets, service
        )
        if not build.reused:
            fingerprint.record(build.image_id)
        info = engine.inspect(build.image_id)
        assert info is not None, "the engine just built it"
        chosen = tag or git_tag(source.path) or content_tag(build.image_id)
        return _LocalImage(info, chosen, build, warnings)
    info = engine.inspect(str(source.ref))
    if info is None:
        ref = source.ref
        if ref.registry is None and ref.tag is None and ref.digest is None:
            # "examples/monitr-app" reads as an image name too: a mistyped path is likelier
            raise SourceError(
                f"no such directory: {ref.repository} (in {Path.cwd()}), and no local image "
                f"named {ref.repository}",
                fix="check the path, or build the image first (docker build -t NAME .)",
            )
        raise SourceError(
            f"image {ref} is not in the local Docker engine",
            fix=f"build it first (docker build -t {ref} .), or ship the directory",
        )
    chosen = tag or source.ref.tag or content_tag(info.id)
    return _LocalImage(info, chosen, None)


def _build(
    source: BuildSource,
    options: BuildOptions,
    engine: Engine,
    on_event: EventSink,
    no_cache: bool,
    cache_targets: Sequence[Target],
    service: str | None,
) -> BuildResult:
    """``engine.build`` with the registry cache of a service this engine never built."""
    cache_from = (
        []
        if no_cache or engine.builder()[0] != "buildkit"
        else _registry_cache(
            cache_targets, service or source.default_name, options["tag"], engine, on_event
        )
    )
    everything: BuildOptions = {**options, "cache_from": cache_from, "no_cache": no_cache}
    return engine.build(source.path, on_event=on_event, **everything)


def _registry_cache(
    targets: Sequence[Target], service: str, build_tag: str, engine: Engine, sink: EventSink
) -> list[str]:
    """``cachefrom`` for a build on an engine with no cache of this service (a fresh CI runner):
    the image a target serves now, pulled first with the registry's in-memory credentials.

    A BuildKit build cannot log in to a registry itself (cloudship's session offers no
    credentials; without one the engine says "no active sessions"), but it reads the inline
    cache of an image the engine already has; an image id would be looked up on Docker Hub,
    so only the pulled ``repo@sha256:`` reference is named. When the
    engine has built this service before, its own build cache is used and nothing is asked.
    """
    if engine.inspect(build_tag) is not None:
        return []
    for tgt in targets:
        try:
            found = tgt.runtime.status(service)
            if found is None or found.current is None:
                continue
            ref = ImageRef.parse(found.current.image)
            if engine.inspect(str(ref)) is None:
                tgt.registry.prepare(sink)
                engine.pull(ref, tgt.registry.credentials())
        except CloudshipError as exc:  # a cache is an optimisation: build without it
            sink(Notice(message=f"no registry cache from target {tgt.name!r}: {exc.message}"))
            continue
        sink(Notice(message=f"build cache: reusing the layers of {ref}"))
        return [str(ref)]
    return []


def _build_platform(target: Target, wanted: str | None, host: str) -> str:
    """The platform to build for ``target``: the one asked for if the runtime runs it, else
    the engine's own if the runtime runs that, else the runtime's (e.g. Fargate's
    cpu_architecture, Container Apps' linux/amd64)."""
    supported = target.runtime.supported_platforms()
    if wanted:
        platform = normalize_platform(wanted)
        if platform not in supported:
            raise PlatformMismatchError(
                f"asked for platform {platform} but target {target.name!r} runs "
                f"{', '.join(sorted(supported))}",
                fix=f"drop platform= (cloudship then builds for {sorted(supported)[0]}), or "
                "choose a target that runs it",
            )
        return platform
    return host if host in supported else sorted(supported)[0]


def _spec(
    name: str,
    app: AppSettings,
    port: int | None,
    env: Mapping[str, str] | None,
    secrets: Mapping[str, str | SecretStr] | None,
    image: ImageInfo | None,
) -> ServiceSpec:
    if port is None:
        if image is not None and len(image.exposed_ports) == 1:
            port = image.exposed_ports[0]
        else:
            found = f" (it exposes {list(image.exposed_ports)})" if image else ""
            raise ConfigError(
                f"which port does {name!r} listen on? none was given{found}",
                fix="pass port=8000 (or the app's port), set [app] port in cloudship.toml, "
                "or add a single EXPOSE to the Dockerfile",
            )
    try:
        return ServiceSpec(
            name=name,
            port=port,
            env={**app.env, **(env or {})},
            secrets={
                k: SecretStr(v) if isinstance(v, str) else v for k, v in (secrets or {}).items()
            },
            health_path=app.health_path or "/",
            cpu=app.cpu,
            memory=app.memory,
            replicas=1 if app.replicas is None else app.replicas,
            max_replicas=app.max_replicas,
            public=True if app.public is None else app.public,
            platform=app.platform,
        )
    except ValidationError as exc:
        from cloudship.config import validation_problems

        raise ConfigError(f"invalid service settings: {validation_problems(exc)}") from None


def _check_platform(info: ImageInfo, target: Target, wanted: str | None) -> None:
    supported = target.runtime.supported_platforms()
    if info.platform not in supported:
        runs = ", ".join(sorted(supported))
        raise PlatformMismatchError(
            f"the image is {info.platform} but target {target.name!r} runs {runs}",
            fix=f"build for it: ship(..., platform={sorted(supported)[0]!r})",
        )
    if wanted and normalize_platform(wanted) != info.platform:
        raise PlatformMismatchError(
            f"asked for platform {wanted} but the image is {info.platform}",
            fix="rebuild with the platform you asked for, or drop platform=",
        )


TargetArg = str | Target | None
# Not Sequence[str | Target]: a str is itself a Sequence, which would make the overloads overlap.
ManyTargets = (
    list[str] | list[Target] | list[str | Target] | tuple[str | Target, ...] | Sequence[Target]
)


def _prepare(
    source: str | Path, targets: Sequence[str | Target | None], options: Options
) -> tuple[BuildSource | ImageSource, AppSettings, list[Target]]:
    from cloudship.config import AppSettings, find_config, load_settings

    path = Path(source)
    # The config may name another Dockerfile, so read it before checking the source.
    config = find_config(*([path] if _is_dir(path) else []), Path.cwd())
    app = load_settings(
        AppSettings,
        config.app,
        dict(
            name=options.name,
            health_path=options.health_path,
            cpu=options.cpu,
            memory=options.memory,
            replicas=options.replicas,
            platform=options.platform,
            port=options.port,
            dockerfile=options.dockerfile,
            public=options.public,
            max_replicas=options.max_replicas,
        ),
    )
    if options.build_args:
        app = app.model_copy(update={"build_args": {**app.build_args, **options.build_args}})
    resolved = detect(source, app.dockerfile)
    settings = dict(options.settings or {})
    built = [_target(one, config, settings) for one in targets]
    names = [t.name for t in built]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"targets {names} name the same target twice",
            fix="give each Target(...) its own name=",
        )
    return resolved, app, built


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long for the file system is no directory
        return False


@dataclass(frozen=True)
class _Delivery:
    """One target's share of a ship: everything is checked before anything moves."""

    target: Target
    spec: ServiceSpec
    sink: EventSink
    local: _LocalImage | None = None  # the image built (or given) for this target's platform
    #: the tag pushed: the image's own, or ``<tag>-<os>-<arch>`` when targets of other
    #: platforms share the repository (the image's tag then names an index of them all)
    push_tag: str | None = None

    @property
    def tag(self) -> str:
        assert self.local is not None
        return self.push_tag or self.local.tag


@dataclass(frozen=True)
class _Preflight:
    """What ``ship()`` and ``plan()`` both know once every check has passed."""

    source: BuildSource | ImageSource
    service: str
    deliveries: list[_Delivery]
    build_time: float
    options: Options


def _targets(target: object) -> tuple[bool, list[str | Target | None]]:
    """``(many, targets)`` from what was passed as ``target``."""
    if target is None or isinstance(target, str | Target):
        return False, [target]
    if isinstance(target, list | tuple):
        if not target:
            raise ConfigError("target is an empty list", fix="name at least one target")
        return True, list(target)
    raise ConfigError(
        f"target must be a name, a Target or a list of them, not a {type(target).__name__}",
        fix="pass target='local' (see `cloudship targets`)",
    )


def _source_arg(source: object) -> str | Path:
    if not isinstance(source, str | Path) or isinstance(source, bool):
        raise SourceError(
            f"source must be a directory path or an image reference, not a {type(source).__name__}",
            fix="pass a directory with a Dockerfile, or an image such as 'app:v1'",
        )
    if not str(source).strip():
        raise SourceError("source is empty", fix="pass a directory with a Dockerfile")
    return source


def _check_delivery(
    tgt: Target,
    spec: ServiceSpec,
    src: BuildSource | ImageSource,
    local: _LocalImage | None,
    engine: Engine,
) -> None:
    """The checks every target passes, in ship and plan alike, before any remote call."""
    tgt.runtime.validate(spec)
    if local is not None:
        _check_platform(local.info, tgt, spec.platform)
        _check_image_needs(tgt, spec, local, engine)
    tgt.check_pull_path()
    if isinstance(src, ImageSource) and src.remote and src.ref.registry:
        tgt.runtime.check_pull_address(src.ref.registry)


def _check_image_needs(tgt: Target, spec: ServiceSpec, local: _LocalImage, engine: Engine) -> None:
    """What the runtime will run in the image (``Runtime.image_needs``) is in it, or refused
    before anything is pushed."""
    from cloudship.image_needs import unmet

    needs = tgt.runtime.image_needs(spec)
    if not needs:
        return
    wanted = {name for need in needs for names in need.any_of for name in names}
    present = engine.find_executables(local.info.id, wanted)
    for need in needs:
        missing = unmet(need, present)
        if missing:
            raise ConfigError(
                f"target {tgt.name!r} would run {need.what} in the image, but {local.tag} has "
                f"no {missing} (looked up in the image's PATH)",
                fix=need.fix,
            )


def _preflight(
    source: object, target: object, options: Options, *, sink: EventSink
) -> tuple[bool, _Preflight]:
    """Source → config → targets → (spec, validate, pull path) → build → platform → spec again.

    Everything that only needs the input is checked before the build, so bad input costs no
    build; what needs the image (its platform, its EXPOSE) right after it. Nothing remote has
    been called when this returns or raises."""
    many, wanted = _targets(target)
    src, app, targets = _prepare(_source_arg(source), wanted, options)
    service = service_name(app.name or src.default_name)
    secrets = options.secrets
    remote = isinstance(src, ImageSource) and src.remote

    # Before the build: a spec with the port known so far (any valid one when it comes from
    # the image's EXPOSE), so the runtime's rules refuse bad sizes before anything is built.
    engine = options.engine or Engine.shared()
    platforms: dict[str, str] = {}
    needed: list[float] = []
    for tgt in targets:
        early = _spec(service, app, app.port or 1, options.env, secrets, None)
        needed.append(_check_timeout(tgt, early, options.timeout))
        tgt.runtime.validate(early)
        if isinstance(src, BuildSource):  # the platform each target runs, refused if it can't
            platforms[tgt.name] = _build_platform(tgt, app.platform, engine.host_platform)
        tgt.check_pull_path()
        if remote and isinstance(src, ImageSource) and src.ref.registry:
            tgt.runtime.check_pull_address(src.ref.registry)

    images: dict[str | None, _LocalImage] = {}  # platform (None: a given image) -> the image
    build_time = 0.0
    info: ImageInfo | None = None
    if remote:
        assert isinstance(src, ImageSource)
        info = engine.inspect(str(src.ref))  # if the engine has it, its EXPOSE tells the port
    elif isinstance(src, ImageSource):
        images[None] = _local_image(
            src, app, tag=options.tag, platform=None, engine=engine, on_event=sink
        )
    else:
        build_started = time.monotonic()
        for platform in dict.fromkeys(platforms.values()):  # one build per distinct platform
            images[platform] = _local_image(
                src,
                app,
                tag=options.tag,
                platform=platform,
                engine=engine,
                on_event=sink,
                no_cache=options.no_cache,
                cache_targets=targets,
                service=service,
                force=options.force,
            )
        build_time = round(time.monotonic() - build_started, 3)

    deliveries: list[_Delivery] = []
    for tgt in targets:  # every check, for every target, before anything is pushed anywhere
        local = None if remote else images[platforms.get(tgt.name)]
        spec = _spec(service, app, app.port, options.env, secrets, local.info if local else info)
        _check_delivery(tgt, spec, src, local, engine)
        deliveries.append(_Delivery(tgt, spec, _stamped(sink, tgt.name), local))
    if options.timeout is None:  # derived: enough for the slowest target's rollout, twice
        options = dataclasses.replace(
            options, timeout=max([DEFAULT_TIMEOUT, *(2 * n for n in needed)])
        )
    return many, _Preflight(src, service, _platform_tags(deliveries), build_time, options)


def _check_timeout(tgt: Target, spec: ServiceSpec, timeout: float | None) -> float:
    """The least time ``tgt``'s rollout of ``spec`` needs (0: unknown); a given ``timeout``
    below it is refused before anything is built."""
    needs = tgt.runtime.rollout_seconds(spec)
    if needs is None:
        return 0.0
    seconds, why = needs
    if timeout is not None and timeout < seconds:
        raise ConfigError(
            f"timeout={timeout:g} is too short for target {tgt.name!r}: its rollout needs at "
            f"least {seconds:g} s ({why})",
            fix=f"pass timeout={math.ceil(seconds)} or more, or leave timeout out (then "
            f"{max(DEFAULT_TIMEOUT, 2 * seconds):g} s)",
        )
    return seconds


def _platform_tags(deliveries: list[_Delivery]) -> list[_Delivery]:
    """Targets that push images of different platforms to one registry would overwrite each
    other's tag: each then pushes ``<tag>-<os>-<arch>``, and ``_write_indexes`` puts an index of
    them under ``<tag>``, as ``docker buildx build --platform a,b --push`` leaves it.

    With one platform (nearly every ship) no registry is asked its address: for some (ACR) that
    is a remote call, and the preflight makes none."""
    if len({one.local.info.platform for one in deliveries if one.local is not None}) < 2:
        return deliveries
    platforms: dict[str, set[str]] = {}
    for one in deliveries:
        if one.local is not None:
            platforms.setdefault(one.target.registry.address, set()).add(one.local.info.platform)
    return [
        dataclasses.replace(
            one, push_tag=f"{one.local.tag}-{one.local.info.platform.replace('/', '-')}"
        )
        if one.local is not None and len(platforms[one.target.registry.address]) > 1
        else one
        for one in deliveries
    ]


def _write_indexes(deliveries: list[_Delivery], shipments: list[Shipment], sink: EventSink) -> None:
    """Under each shared tag, an index of the platforms the targets pushed (by digest)."""
    groups: dict[tuple[str, str], list[tuple[_Delivery, Shipment]]] = {}
    for one, shipped in zip(deliveries, shipments, strict=True):
        if one.push_tag is not None and one.local is not None:
            key = (one.target.registry.address, ImageRef.parse(shipped.image).path)
            groups.setdefault(key, []).append((one, shipped))
    for (address, path), members in groups.items():
        registry = members[0][0].target.registry
        tag = members[0][0].local.tag  # type: ignore[union-attr]
        entries = {
            shipped.digest: one.local.info.platform  # type: ignore[union-attr]
            for one, shipped in members
        }
        if not registry.writes_indexes:
            tags = ", ".join(sorted({one.tag for one, _ in members}))
            sink(
                Notice(
                    message=f"{address}/{path}: {registry.kind} registries cannot take an "
                    f"image index from cloudship yet; the platforms are tagged {tags} and "
                    f"the tag {tag} is not written"
                )
            )
            continue
        digest = registry.write_index(path, tag, entries)
        listed = ", ".join(sorted(entries.values()))
        sink(Notice(message=f"{address}/{path}:{tag} is an index of {listed} ({digest[:19]})"))


@dataclass(frozen=True)
class _PushDecision:
    """Whether a target's registry already has the image, decided the same way for both."""

    repository: str
    ref: ImageRef
    digest: str | None  # the digest the registry already has, or None: a push is needed


def _push_decision(
    one: _Delivery, service: str, *, force: bool, create: bool, sink: EventSink
) -> _PushDecision:
    """The registry already has the image when the engine knows its digest in the repository
    and the registry answers that digest for the tag (``force`` always pushes)."""
    tgt, local, tag = one.target, one.local, one.tag
    assert local is not None
    tgt.registry.prepare(sink)
    repository = tgt.registry.repository(service, create=create)
    ref = ImageRef.parse(repository).with_tag(tag)
    known = local.info.digest_in(repository)
    remote = tgt.registry.manifest_digest(ref.path, tag) if known else None
    have = known if known and remote == known and not force else None
    return _PushDecision(repository, ref, have)


_pushes_lock = threading.Lock()
_pushes: dict[str, threading.Lock] = {}


@contextmanager
def _one_push_at_a_time(ref: ImageRef) -> Iterator[None]:
    """Pushes of one tag to one registry wait for each other, within this process.

    Two targets that share a registry (or two threads shipping one service) push the same
    layers: the engine and the registry then race, one blob upload cancelling the other's, and
    the loser's manifest PUT is refused "blob unknown to registry" (seen in CI with two local
    targets on one registry). After the first push the second finds every layer there and only
    repeats the manifest PUT, which is idempotent. Other processes are covered by the push's
    own retry (``Engine.push`` retries "blob unknown")."""
    with _pushes_lock:
        lock = _pushes.setdefault(str(ref), threading.Lock())
    with lock:
        yield


def _deliver(one: _Delivery, pre: _Preflight, *, engine: Engine, started: float) -> Shipment:
    """Push (unless the registry has it) and deploy to one target."""
    tgt, spec, sink = one.target, one.spec, one.sink
    force, timeout = pre.options.force, pre.options.timeout
    assert timeout is not None  # resolved by the preflight
    src, local = pre.source, one.local
    timer = _Timer()
    # `timeout` bounds the whole ship from its start: the build is not cut short, but push,
    # pull and health gate each get only what is left (cloudship.deadline).
    deadline = Deadline(timeout, started=started)
    if local is None:
        assert isinstance(src, ImageSource)
        pull = tgt.registry.pull_credentials() if src.ref.registry == tgt.registry.address else None
        with timer.phase("deploy"):
            deployment = tgt.runtime.deploy(
                spec, src.ref, pull, timeout=deadline.remaining(), on_event=sink, force=force
            )
        return _shipment(tgt, spec.name, src.ref.tag, deployment, None, None, timer, started)

    with timer.phase("push"):
        decision = _push_decision(one, spec.name, force=force, create=True, sink=sink)
        auth = tgt.registry.credentials()
        if decision.digest is not None:
            digest, push = decision.digest, PushSummary(skipped=True)
            sink(PushFinished(digest=digest, skipped=True))
        else:
            with _one_push_at_a_time(decision.ref):
                engine.tag(local.info.id, decision.ref)
                pushed = engine.push(
                    decision.ref, auth, on_event=sink, target=tgt.name, deadline=deadline
                )
            digest = pushed.digest
            push = PushSummary(
                skipped=False,
                layers_pushed=pushed.layers_pushed,
                layers_existing=pushed.layers_existing,
                bytes_pushed=pushed.bytes_pushed,
            )
            sink(
                PushFinished(
                    digest=digest,
                    skipped=False,
                    layers_pushed=pushed.layers_pushed,
                    layers_existing=pushed.layers_existing,
                    bytes_pushed=pushed.bytes_pushed,
                )
            )

    pinned = ImageRef.parse(decision.repository).with_digest(digest)
    with timer.phase("deploy"):
        deadline.check(f"the ship of {spec.name} to {tgt.name}")
        pull = tgt.registry.pull_credentials()
        deployment = tgt.runtime.deploy(
            spec, pinned, pull, timeout=deadline.remaining(), on_event=sink, force=force
        )
    shipment = _shipment(
        tgt, spec.name, local.tag, deployment, _summary(local), push, timer, started
    )
    shipment.timings["build"] = pre.build_time
    shipment.warnings = list(local.warnings)
    return shipment


def _summary(local: _LocalImage) -> BuildSummary | None:
    if local.build is None:
        return None
    return BuildSummary(
        image_id=local.info.id,
        steps=local.build.steps,
        cache_hits=local.build.cache_hits,
        first_miss=local.build.first_miss,
        platform=local.info.platform,
        builder=local.build.builder,
        seconds=round(local.build.seconds, 3),
        reused=local.build.reused,
    )


def ship(
    source: str | Path,
    target: TargetArg | ManyTargets = None,
    **options: Unpack[ShipOptions],
) -> Shipment | list[Shipment]:
    """``cloudship.api.ship``: its signature and documentation are there."""
    started = time.monotonic()
    opts = read_options(options)
    user_sink = _serialized(opts.on_event or ignore)
    try:
        many, pre = _preflight(source, target, opts, sink=user_sink)
        engine = opts.engine or Engine.shared()

        def run(one: _Delivery) -> Shipment:
            return _deliver(one, pre, engine=engine, started=started)

        if not many:
            return run(pre.deliveries[0])
        shipments = _deliver_all(pre.deliveries, run)
        _write_indexes(pre.deliveries, shipments, user_sink)
        return shipments
    finally:
        Engine.settle()


def _deliver_all(
    deliveries: list[_Delivery], run: Callable[[_Delivery], Shipment]
) -> list[Shipment]:
    from concurrent.futures import ThreadPoolExecutor, as_completed

    done: dict[str, Shipment] = {}
    failed: dict[str, CloudshipError] = {}
    with ThreadPoolExecutor(max_workers=len(deliveries), thread_name_prefix="ship") as pool:
        futures = {pool.submit(run, one): one.target.name for one in deliveries}
        for future in as_completed(futures):
            target_name = futures[future]
            try:
                done[target_name] = future.result()
            except CloudshipError as exc:
                failed[target_name] = exc
            except Exception as exc:  # a bug in one target must not hide the others' results
                unexpected = DeployError(f"unexpected {type(exc).__name__}: {exc}")
                unexpected.__cause__ = exc
                failed[target_name] = unexpected
    if failed:
        raise MultiTargetError(shipped=done, failed=failed)
    return [done[one.target.name] for one in deliveries]


def _serialized(sink: EventSink) -> EventSink:
    """One event at a time, whichever thread it comes from."""
    lock = threading.Lock()

    def call(event: Event) -> None:
        with lock:
            sink(event)

    return call


def _stamped(sink: EventSink, target: str) -> EventSink:
    """Events from a runtime or registry do not know their target's name; add it."""

    def stamp(event: Event) -> None:
        sink(event if event.target else dataclasses.replace(event, target=target))

    return stamp


def _shipment(
    tgt: Target,
    service: str,
    tag: str | None,
    deployment: Deployment,
    build: BuildSummary | None,
    push: PushSummary | None,
    timer: _Timer,
    started: float,
) -> Shipment:
    timer.timings["total"] = round(time.monotonic() - started, 3)
    return Shipment(
        target=tgt.name,
        name=service,
        image=deployment.image,
        digest=deployment.digest,
        tag=tag,
        url=deployment.url,
        revision=deployment.revision,
        previous_revision=deployment.previous,
        changed=deployment.changed or (push is not None and not push.skipped),
        build=build,
        push=push,
        timings=timer.timings,
    )


def _plan_one(one: _Delivery, pre: _Preflight) -> ShipPlan:
    tgt, spec, local = one.target, one.spec, one.local
    if local is None:
        assert isinstance(pre.source, ImageSource)
        runtime_plan = tgt.runtime.plan(spec, pre.source.ref)
        return ShipPlan(
            target=tgt.name,
            name=spec.name,
            image=str(pre.source.ref),
            digest=pre.source.ref.digest,
            changed=runtime_plan.changed or pre.options.force,
            actions=runtime_plan.actions,
        )
    actions: list[str] = []
    if local.build and local.build.reused:
        actions.append(
            f"build: nothing, unchanged since {local.info.id[:19]} (same context, Dockerfile, "
            "args and base images)"
        )
    elif local.build:
        miss = f"; first rebuilt: {local.build.first_miss}" if local.build.first_miss else ""
        actions.append(
            f"build for {local.info.platform}: {local.build.cache_hits} of "
            f"{local.build.steps} steps from the layer cache{miss}"
        )
    decision = _push_decision(one, spec.name, force=pre.options.force, create=False, sink=one.sink)
    if decision.digest is not None:
        image = ImageRef.parse(decision.repository).with_digest(decision.digest)
        actions.append(f"push: nothing, {tgt.registry.address} already has {decision.digest[:19]}")
    else:
        image = decision.ref
        actions.append(f"push {decision.ref} to {tgt.registry.address}")
    if one.push_tag is not None:  # targets of other platforms share the registry
        actions.append(
            f"write {local.tag} as an image index of every platform pushed to "
            f"{tgt.registry.address}"
            if tgt.registry.writes_indexes
            else f"leave {local.tag} unwritten: {tgt.registry.kind} registries take no image "
            "index from cloudship yet"
        )
    runtime_plan = tgt.runtime.plan(spec, image)
    actions += runtime_plan.actions
    return ShipPlan(
        target=tgt.name,
        name=spec.name,
        image=str(image),
        digest=image.digest,
        changed=runtime_plan.changed or image.digest is None or pre.options.force,
        actions=actions,
        warnings=list(local.warnings),
        build=_summary(local),
    )


def plan(
    source: str | Path,
    target: TargetArg | ManyTargets = None,
    **options: Unpack[ShipOptions],
) -> ShipPlan | list[ShipPlan]:
    """``cloudship.api.plan``: its signature and documentation are there."""
    opts = read_options(options)
    try:
        many, pre = _preflight(source, target, opts, sink=opts.on_event or ignore)
        plans = [_plan_one(one, pre) for one in pre.deliveries]
    finally:
        Engine.settle()
    return plans if many else plans[0]


def _resolve_only(target: str | Target | None, settings: dict[str, Any]) -> Target:
    from cloudship.config import find_config

    return _target(target, find_config(Path.cwd()), settings)


def _not_found(name: str, tgt: Target) -> ServiceNotFoundError:
    return service_not_found(name, f"target {tgt.name!r}")


def status(name: str, target: str | Target | None = None, **settings: Any) -> ServiceStatus:
    """``cloudship.api.status``: its signature and documentation are there."""
    check_service_arguments(name, "status", target=target)
    tgt = _resolve_only(target, settings)
    found = tgt.runtime.status(name)
    if found is None:
        raise _not_found(name, tgt)
    return found


def services(target: str | Target | None = None, **settings: Any) -> list[str]:
    """``cloudship.api.services``: its signature and documentation are there."""
    return sorted(_resolve_only(target, settings).runtime.services())


def logs(
    name: str, target: str | Target | None = None, tail: int = 100, **settings: Any
) -> list[str]:
    """``cloudship.api.logs``: its signature and documentation are there."""
    check_service_arguments(name, "logs", target=target, tail=tail)
    tgt = _resolve_only(target, settings)
    try:
        return tgt.runtime.logs(name, tail)
    except ServiceNotFoundError:
        raise _not_found(name, tgt) from None


def follow_logs(
    name: str,
    target: str | Target | None = None,
    tail: int = 100,
    *,
    stop: threading.Event | None = None,
    **settings: Any,
) -> Iterator[str]:
    """``cloudship.api.follow_logs``: its signature and documentation are there."""
    check_service_arguments(name, "follow_logs", target=target, tail=tail)
    tgt = _resolve_only(target, settings)
    if tgt.runtime.status(name) is None:
        raise _not_found(name, tgt)
    return tgt.runtime.follow_logs(name, tail, stop=stop or threading.Event())


def rollback(
    name: str,
    target: str | Target | None = None,
    to: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_event: EventSink | None = None,
    **settings: Any,
) -> Deployment:
    """``cloudship.api.rollback``: its signature and documentation are there."""
    check_service_arguments(
        name, "rollback", target=target, to=to, timeout=timeout, on_event=on_event
    )
    tgt = _resolve_only(target, settings)
    try:
        return tgt.runtime.rollback(name, to, timeout=timeout, on_event=on_event or ignore)
    except ServiceNotFoundError:
        raise _not_found(name, tgt) from None  # the same words as status and logs


def destroy(
    name: str, target: str | Target | None = None, *, missing_ok: bool = False, **settings: Any
) -> bool:
    """``cloudship.api.destroy``: its signature and documentation are there."""
    check_service_arguments(name, "destroy", target=target)
    tgt = _resolve_only(target, settings)
    if tgt.runtime.status(name) is None:
        if missing_ok:
            return False
        raise _not_found(name, tgt)
    tgt.runtime.destroy(name)
    return True
