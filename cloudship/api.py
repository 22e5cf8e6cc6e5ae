"""``ship()``, ``plan()``, ``status()``, ``logs()``, ``rollback()``, ``destroy()``.

``ship`` reads top to bottom like the flow it runs::

    source → build (layer cache) → platform check → spec check → registry ready + credentials
           → skip push if the registry has the digest → push → deploy by digest → Shipment

Everything that can be refused (bad input, a platform the runtime cannot run, a spec it cannot
honour) is refused before anything remote is created or pushed.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from pydantic import SecretStr, ValidationError

from cloudship.config import (
    AppSettings,
    ConfigFile,
    find_config,
    load_settings,
    validation_problems,
)
from cloudship.engine import BuildResult, Engine, ImageInfo
from cloudship.errors import (
    CloudshipError,
    ConfigError,
    DeployError,
    MultiTargetError,
    PlatformMismatchError,
    ServiceNotFoundError,
    SourceError,
)
from cloudship.events import Event, EventSink, PushFinished, ignore
from cloudship.images import ImageRef, normalize_platform
from cloudship.runtime import Deployment, ServiceSpec, ServiceStatus
from cloudship.shipment import BuildSummary, PushSummary, Shipment, ShipPlan
from cloudship.sources import BuildSource, ImageSource, content_tag, detect, git_tag
from cloudship.targets import Target, resolve

DEFAULT_TARGET = "local"
DEFAULT_TIMEOUT = 300.0


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
) -> _LocalImage:
    if isinstance(source, BuildSource):
        build = engine.build(
            source.path,
            tag=f"cloudship-build/{source.default_name}:latest",
            dockerfile=source.dockerfile,
            buildargs=app.build_args,
            target=app.build_target,
            platform=platform,
            on_event=on_event,
        )
        info = engine.inspect(build.image_id)
        assert info is not None, "the engine just built it"
        chosen = tag or git_tag(source.path) or content_tag(build.image_id)
        return _LocalImage(info, chosen, build)
    info = engine.inspect(str(source.ref))
    if info is None:
        raise SourceError(
            f"image {source.ref} is not in the local Docker engine",
            fix=f"build it first (docker build -t {source.ref} .), or ship the directory",
        )
    chosen = tag or source.ref.tag or content_tag(info.id)
    return _LocalImage(info, chosen, None)


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
            platform=app.platform,
        )
    except ValidationError as exc:
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
    source: str | Path,
    targets: Sequence[str | Target | None],
    *,
    name: str | None,
    port: int | None,
    env: Mapping[str, str] | None,
    health_path: str | None,
    cpu: float | None,
    memory: str | None,
    replicas: int | None,
    platform: str | None,
    settings: dict[str, Any],
) -> tuple[BuildSource | ImageSource, AppSettings, list[Target]]:
    path = Path(source)
    # The config may name another Dockerfile, so read it before checking the source.
    config = find_config(*([path] if path.is_dir() else []), Path.cwd())
    app = load_settings(
        AppSettings,
        config.app,
        dict(
            name=name,
            health_path=health_path,
            cpu=cpu,
            memory=memory,
            replicas=replicas,
            platform=platform,
            port=port,
        ),
    )
    resolved = detect(source, app.dockerfile)
    built = [_target(one, config, settings) for one in targets]
    names = [t.name for t in built]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"targets {names} name the same target twice",
            fix="give each Target(...) its own name=",
        )
    return resolved, app, built


@dataclass(frozen=True)
class _Delivery:
    """One target's share of a ship: everything is checked before anything moves."""

    target: Target
    spec: ServiceSpec
    sink: EventSink


def _deliver(
    one: _Delivery,
    src: BuildSource | ImageSource,
    local: _LocalImage | None,
    *,
    engine: Engine,
    force: bool,
    timeout: float,
    started: float,
) -> Shipment:
    """Push (unless the registry has it) and deploy to one target."""
    tgt, spec, sink = one.target, one.spec, one.sink
    timer = _Timer()
    if local is None:
        assert isinstance(src, ImageSource)
        pull = tgt.registry.credentials() if src.ref.registry == tgt.registry.address else None
        with timer.phase("deploy"):
            deployment = tgt.runtime.deploy(
                spec, src.ref, pull, timeout=timeout, on_event=sink, force=force
            )
        return _shipment(tgt, spec.name, src.ref.tag, deployment, None, None, timer, started)

    with timer.phase("push"):
        tgt.registry.prepare(sink)
        repository = tgt.registry.repository(spec.name)
        auth = tgt.registry.credentials()
        ref = ImageRef.parse(repository).with_tag(local.tag)
        known = local.info.digest_in(repository)
        remote = tgt.registry.manifest_digest(ref.path, local.tag) if known else None
        if known and remote == known and not force:
            digest, push = known, PushSummary(skipped=True)
            sink(PushFinished(digest=digest, skipped=True))
        else:
            engine.tag(local.info.id, ref)
            pushed = engine.push(ref, auth, on_event=sink, target=tgt.name)
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

    pinned = ImageRef.parse(repository).with_digest(digest)
    with timer.phase("deploy"):
        deployment = tgt.runtime.deploy(
            spec, pinned, auth, timeout=timeout, on_event=sink, force=force
        )
    build = (
        BuildSummary(
            image_id=local.info.id,
            steps=local.build.steps,
            cache_hits=local.build.cache_hits,
        )
        if local.build
        else None
    )
    return _shipment(tgt, spec.name, local.tag, deployment, build, push, timer, started)


@overload
def ship(
    source: str | Path,
    target: TargetArg = None,
    *,
    name: str | None = None,
    tag: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str | SecretStr] | None = None,
    health_path: str | None = None,
    cpu: float | None = None,
    memory: str | None = None,
    replicas: int | None = None,
    platform: str | None = None,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    on_event: EventSink | None = None,
    engine: Engine | None = None,
    **settings: Any,
) -> Shipment: ...


@overload
def ship(
    source: str | Path,
    target: ManyTargets,
    *,
    name: str | None = None,
    tag: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str | SecretStr] | None = None,
    health_path: str | None = None,
    cpu: float | None = None,
    memory: str | None = None,
    replicas: int | None = None,
    platform: str | None = None,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    on_event: EventSink | None = None,
    engine: Engine | None = None,
    **settings: Any,
) -> list[Shipment]: ...


def ship(
    source: str | Path,
    target: TargetArg | ManyTargets = None,
    *,
    name: str | None = None,
    tag: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str | SecretStr] | None = None,
    health_path: str | None = None,
    cpu: float | None = None,
    memory: str | None = None,
    replicas: int | None = None,
    platform: str | None = None,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    on_event: EventSink | None = None,
    engine: Engine | None = None,
    **settings: Any,
) -> Shipment | list[Shipment]:
    """Build ``source``, push it, deploy it by digest to ``target``, and return a Shipment.

    ``source`` is a directory with a Dockerfile, a local image (``app:v1``) or a remote
    digest-pinned reference (deployed as is, nothing pushed). ``target`` defaults to the config
    file's ``target``, then ``"local"``. ``port`` is the port the app listens on in the
    container (default: the image's single EXPOSE). ``tag`` defaults to the git short SHA of a
    clean tree, else a content-derived tag; the deploy always uses the digest. Provider
    settings (e.g. ``host_port=8080`` for ``local``) are accepted as extra keywords.

    Re-shipping an unchanged source pushes nothing, restarts nothing and returns
    ``changed=False``; ``force=True`` pushes and deploys a new revision anyway.

    With a list of targets the image is built once, then pushed and deployed to every target
    concurrently, and a list of Shipments (in the order given) is returned. Every target is
    checked (platform, spec, pull path) before anything is pushed anywhere; a target that fails
    later does not undo the others: ``MultiTargetError`` then carries both the shipments that
    succeeded and each failure with its cause. ``on_event`` may then be called from worker
    threads, one call at a time.
    """
    wanted: list[str | Target | None]
    if target is None or isinstance(target, str | Target):
        many, wanted = False, [target]
    else:
        many, wanted = True, list(target)
    if many and not wanted:
        raise ConfigError("target is an empty list", fix="name at least one target")
    started = time.monotonic()
    src, app, targets = _prepare(
        source,
        wanted,
        name=name,
        port=port,
        env=env,
        health_path=health_path,
        cpu=cpu,
        memory=memory,
        replicas=replicas,
        platform=platform,
        settings=settings,
    )
    service = app.name or src.default_name
    engine = engine or Engine.shared()
    user_sink = _serialized(on_event or ignore)

    local: _LocalImage | None = None
    info: ImageInfo | None
    build_time = 0.0
    if isinstance(src, ImageSource) and src.remote:
        info = engine.inspect(str(src.ref))  # if the engine has it, its EXPOSE tells the port
    else:
        build_started = time.monotonic()
        local = _local_image(
            src, app, tag=tag, platform=app.platform, engine=engine, on_event=user_sink
        )
        build_time = round(time.monotonic() - build_started, 3)
        info = local.info

    deliveries: list[_Delivery] = []
    for tgt in targets:  # every check, for every target, before anything is pushed anywhere
        if local is not None:
            _check_platform(local.info, tgt, app.platform)
        spec = _spec(service, app, app.port, env, secrets, info)
        tgt.runtime.validate(spec)
        tgt.check_pull_path()
        if isinstance(src, ImageSource) and src.remote and src.ref.registry:
            tgt.runtime.check_pull_address(src.ref.registry)
        deliveries.append(_Delivery(tgt, spec, _stamped(user_sink, tgt.name)))

    def run(one: _Delivery) -> Shipment:
        shipment = _deliver(
            one, src, local, engine=engine, force=force, timeout=timeout, started=started
        )
        if local is not None:
            shipment.timings["build"] = build_time
        return shipment

    if not many:
        return run(deliveries[0])
    return _deliver_all(deliveries, run)


def _deliver_all(
    deliveries: list[_Delivery], run: Callable[[_Delivery], Shipment]
) -> list[Shipment]:
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


def plan(
    source: str | Path,
    target: str | Target | None = None,
    *,
    name: str | None = None,
    tag: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str | SecretStr] | None = None,
    health_path: str | None = None,
    cpu: float | None = None,
    memory: str | None = None,
    replicas: int | None = None,
    platform: str | None = None,
    on_event: EventSink | None = None,
    engine: Engine | None = None,
    **settings: Any,
) -> ShipPlan:
    """What ``ship()`` would do. Builds locally (to know the image) and only reads from the
    registry and the runtime: nothing is pushed, created or started."""
    sink = on_event or ignore
    src, app, (tgt,) = _prepare(
        source,
        [target],
        name=name,
        port=port,
        env=env,
        health_path=health_path,
        cpu=cpu,
        memory=memory,
        replicas=replicas,
        platform=platform,
        settings=settings,
    )
    service = app.name or src.default_name
    if isinstance(src, ImageSource) and src.remote:
        spec = _spec(service, app, app.port, env, secrets, None)
        runtime_plan = tgt.runtime.plan(spec, src.ref)
        return ShipPlan(
            target=tgt.name,
            name=service,
            image=str(src.ref),
            digest=src.ref.digest,
            changed=runtime_plan.changed,
            actions=runtime_plan.actions,
        )
    engine = engine or Engine.shared()
    local = _local_image(src, app, tag=tag, platform=app.platform, engine=engine, on_event=sink)
    _check_platform(local.info, tgt, app.platform)
    spec = _spec(service, app, app.port, env, secrets, local.info)
    tgt.runtime.validate(spec)
    actions: list[str] = []
    if local.build:
        actions.append(
            f"build: {local.build.cache_hits} of {local.build.steps} steps from the layer cache"
        )
    repository = tgt.registry.repository(service, create=False)
    ref = ImageRef.parse(repository).with_tag(local.tag)
    known = local.info.digest_in(repository)
    remote = None
    if known:
        tgt.registry.prepare(sink)
        remote = tgt.registry.manifest_digest(ref.path, local.tag)
    if known and remote == known:
        image = ImageRef.parse(repository).with_digest(known)
        actions.append(f"push: nothing, {tgt.registry.address} already has {known[:19]}")
    else:
        image = ref
        actions.append(f"push {ref} to {tgt.registry.address}")
    runtime_plan = tgt.runtime.plan(spec, image)
    actions += runtime_plan.actions
    return ShipPlan(
        target=tgt.name,
        name=service,
        image=str(image),
        digest=image.digest,
        changed=runtime_plan.changed or image.digest is None,
        actions=actions,
    )


def _resolve_only(target: str | Target | None, settings: dict[str, Any]) -> Target:
    return _target(target, find_config(Path.cwd()), settings)


def status(name: str, target: str | Target | None = None, **settings: Any) -> ServiceStatus:
    """The service's serving revision and history; ``ServiceNotFoundError`` if not deployed."""
    tgt = _resolve_only(target, settings)
    found = tgt.runtime.status(name)
    if found is None:
        raise ServiceNotFoundError(
            f"service {name!r} is not deployed on target {tgt.name!r}",
            fix="check the name, or ship it first",
        )
    return found


def logs(
    name: str, target: str | Target | None = None, tail: int = 100, **settings: Any
) -> list[str]:
    """The serving revision's last ``tail`` log lines."""
    return _resolve_only(target, settings).runtime.logs(name, tail)


def rollback(
    name: str,
    target: str | Target | None = None,
    to: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_event: EventSink | None = None,
    **settings: Any,
) -> Deployment:
    """Serve an earlier revision: ``to`` (e.g. ``"r2"``), else the one before the current."""
    tgt = _resolve_only(target, settings)
    return tgt.runtime.rollback(name, to, timeout=timeout, on_event=on_event or ignore)


def destroy(name: str, target: str | Target | None = None, **settings: Any) -> None:
    """Remove the service and all its revisions (images stay in the registry)."""
    _resolve_only(target, settings).runtime.destroy(name)
