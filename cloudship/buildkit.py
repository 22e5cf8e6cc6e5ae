"""BuildKit builds through the engine API.

``POST /build?version=2`` makes the engine build with its built-in BuildKit (Engine ≥ 18.09,
API ≥ 1.39), what ``DOCKER_BUILDKIT=1 docker build`` does. docker-py's ``build()`` has no
``version`` parameter (docker/docker-py#2230, open), so this module posts the request itself
through docker-py's low-level client, which keeps the engine connection, TLS and API-version
negotiation docker-py already does.

The context is served by a client session (``buildkit_session``) that offers files only: no
``--mount=type=secret`` / ``type=ssh`` values and no registry login (so ``flow.py`` pulls the
cache image with the in-memory credentials first). ``refuse_session_only`` finds those before
the build starts and says what to do.

Where the engine connection cannot carry a session, the context goes up as a **GNU-format** tar
(``context_tar``): the 20.10 engine misreads the PAX headers Python's ``tarfile`` writes by
default (the first entry becomes the Dockerfile). It holds the files left after
``.dockerignore`` — or BuildKit's ``<Dockerfile>.dockerignore`` beside the Dockerfile, which
takes precedence — matched with docker-py's port of the CLI's pattern rules (``**``, ``!``
exceptions, a leading ``/`` ignored), plus the Dockerfile and the ignore file, which the engine
then reads from the same context (so there, unlike over a session, ``COPY . .`` copies them).

The stream carries ``moby.buildkit.trace`` lines (decoded by ``buildkit_trace``) and
``moby.image.id``; ``BuildTracker`` turns them into step events as the build runs.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudship.buildkit_trace import TraceDecodeError, Vertex, decode_trace
from cloudship.errors import BuildError
from cloudship.events import BuildLog, BuildStep, BuildStepStarted, EventSink

# "[2/5] RUN pip install …", "[builder 3/4] COPY …", "[stage-1 2/2] COPY --from=…"
_STEP_NAME = re.compile(r"^\[(?:(?P<stage>[^\]\s]+) )?(?P<step>\d+)/(?P<total>\d+)\] (?P<text>.*)$")
LOG_TAIL = 30


def ignore_file(context: Path, dockerfile: str) -> Path | None:
    """The ignore file BuildKit uses: ``<Dockerfile>.dockerignore`` beside the Dockerfile when it
    exists (BuildKit's per-Dockerfile ignore file), else the context's ``.dockerignore``."""
    per_file = (context / dockerfile).parent / f"{Path(dockerfile).name}.dockerignore"
    for candidate in (per_file, context / ".dockerignore"):
        if candidate.is_file():
            return candidate
    return None


def ignore_patterns(path: Path | None) -> list[str]:
    if path is None:
        return []
    patterns = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def context_tar(context: Path, dockerfile: str = "Dockerfile") -> io.BytesIO:
    """The build context as a GNU tar, ``.dockerignore`` applied (see the module docstring)."""
    from docker.utils.build import exclude_paths

    found = ignore_file(context, dockerfile)
    patterns = ignore_patterns(found)
    names = set(exclude_paths(str(context), patterns, dockerfile=dockerfile))
    names.add(dockerfile)
    if found is not None:
        names.add(found.relative_to(context).as_posix())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(names):
            full = context / name
            if not full.exists() and not full.is_symlink():
                continue
            info = tar.gettarinfo(str(full), arcname=name)
            # Owner names differ between machines and mean nothing in an image.
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isfile():
                with full.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    buffer.seek(0)
    return buffer


_HANDED_OVER = {"secret": "secrets", "ssh": "an ssh agent"}
_SESSION_MOUNT = re.compile(r"--mount=(?:[^\s]*,)?type=(secret|ssh)\b")


def refuse_session_only(dockerfile: Path, *, heredocs: bool = True) -> None:
    """Raise ``BuildError`` for what a files-only session cannot do, before building;
    ``heredocs=False`` for an engine whose built-in frontend predates them (Engine < 23.0, whose
    BuildKit 0.8 frontend reads ``RUN <<EOF`` as an unknown instruction)."""
    from cloudship.dockerfile_lint import parse

    text = dockerfile.read_text()
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    if re.match(r"#\s*syntax\s*=", first, re.IGNORECASE):
        raise BuildError(
            f"{dockerfile.name} line 1 asks for another Dockerfile frontend ({first.strip()}); "
            "cloudship builds with the engine's built-in frontend, which cannot load one",
            log_tail=[],
            fix="remove the '# syntax=' line (the built-in frontend understands RUN --mount, "
            "COPY --chmod and multi-stage builds), or build with docker buildx and ship the "
            "image by name",
        )
    for instruction in parse(dockerfile):
        if instruction.heredocs and not heredocs:
            raise BuildError(
                f"{dockerfile.name} line {instruction.line}: {instruction.cmd} with a heredoc "
                "(<<EOF) needs a newer Dockerfile frontend than this engine's built-in one",
                log_tail=[],
                fix="write the commands on one line (joined with &&) or COPY a script, or "
                "upgrade the engine to 23.0 or later",
            )
        if instruction.cmd == "RUN" and (match := _SESSION_MOUNT.search(instruction.original)):
            kind = match[1]
            raise BuildError(
                f"{dockerfile.name} line {instruction.line}: RUN --mount=type={kind} needs a "
                f"BuildKit session that hands over {_HANDED_OVER[kind]}; cloudship's session "
                "serves files only",
                log_tail=[],
                fix="pass the value as a build arg used only in a discarded build stage, or "
                "build with docker buildx and ship the image by name",
            )


@dataclass
class _Step:
    vertex: str
    name: str
    step: int
    total: int
    stage: str | None
    started: float | None = None
    done: bool = False
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL))
    partial: str = ""


@dataclass
class BuildTracker:
    """Follows one build's stream: emits ``BuildStepStarted``, ``BuildLog`` and ``BuildStep``,
    and keeps what ``BuildResult`` and a ``BuildError`` need."""

    on_event: EventSink
    image_id: str | None = None
    steps: dict[str, _Step] = field(default_factory=dict)
    internal: dict[str, str] = field(default_factory=dict)
    finished: list[BuildStep] = field(default_factory=list)
    failed: tuple[str, str] | None = None  # (vertex digest, error)
    warnings: list[str] = field(default_factory=list)

    def feed(self, chunk: dict[str, Any]) -> None:
        if "error" in chunk or "errorDetail" in chunk:
            message = (chunk.get("errorDetail") or {}).get("message") or chunk.get("error")
            raise self.error(str(message))
        ident = chunk.get("id")
        aux = chunk.get("aux")
        if ident == "moby.image.id" and isinstance(aux, dict):
            self.image_id = str(aux.get("ID"))
        elif ident == "moby.buildkit.trace" and isinstance(aux, str):
            try:
                status = decode_trace(aux)
            except TraceDecodeError:
                return  # progress display only: a line we cannot read must not fail the build
            for vertex in status.vertexes:
                self._vertex(vertex)
            for log in status.logs:
                self._log(log.vertex, log.data)
            for warning in status.warnings:
                self.warnings.append(warning.short)

    def _vertex(self, vertex: Vertex) -> None:
        match = _STEP_NAME.match(vertex.name)
        if match is None:
            self.internal[vertex.digest] = vertex.name
            if vertex.error and self.failed is None:
                self.failed = (vertex.digest, vertex.error)
            return
        step = self.steps.get(vertex.digest)
        if step is None:
            step = _Step(
                vertex.digest,
                match["text"],
                int(match["step"]),
                int(match["total"]),
                match["stage"],
            )
            self.steps[vertex.digest] = step
        if vertex.started and step.started is None:
            step.started = vertex.started
            self.on_event(
                BuildStepStarted(
                    step=step.step, total=step.total, instruction=step.name, stage=step.stage
                )
            )
        if vertex.error and self.failed is None:
            self.failed = (vertex.digest, vertex.error)
        if (vertex.completed or vertex.cached) and not step.done and not vertex.error:
            step.done = True
            self._flush(step)
            seconds = (
                max(0.0, vertex.completed - vertex.started)
                if vertex.completed and vertex.started
                else 0.0
            )
            event = BuildStep(
                step=step.step,
                total=step.total,
                instruction=step.name,
                # FROM only resolves a base image from the engine's store: nothing is built
                # (the classic builder's reading too).
                cached=vertex.cached or step.name.upper().startswith("FROM "),
                seconds=round(seconds, 3),
                stage=step.stage,
            )
            self.finished.append(event)
            self.on_event(event)

    def _log(self, vertex: str, data: bytes) -> None:
        step = self.steps.get(vertex)
        if step is None:
            return
        text = step.partial + data.decode("utf-8", "replace")
        *lines, step.partial = text.replace("\r\n", "\n").split("\n")
        for line in lines:
            self._line(step, line)

    def _line(self, step: _Step, line: str) -> None:
        line = line.rstrip().rsplit("\r", 1)[-1]  # keep the last state of a progress bar
        if not line:
            return
        step.logs.append(line)
        self.on_event(BuildLog(step=step.step, instruction=step.name, line=line))

    def _flush(self, step: _Step) -> None:
        if step.partial:
            self._line(step, step.partial)
            step.partial = ""

    def error(self, message: str) -> BuildError:
        """The BuildError for a failed build: the failing step, its error, its last output."""
        step = self.steps.get(self.failed[0]) if self.failed else None
        if step is None:  # no vertex named the error: the step still running is the one
            step = next((s for s in self.steps.values() if s.started and not s.done), None)
        if step is not None:
            self._flush(step)
            stage = f" of stage {step.stage}" if step.stage else ""
            where = f"step {step.step}/{step.total}{stage}"
            tail = list(step.logs) or ["(the step printed nothing)"]
            return BuildError(
                f"{where} failed: {step.name}: {message.strip()}",
                log_tail=tail,
                fix=_fix_for(message),
            )
        return BuildError(
            f"docker build failed: {message.strip()}", log_tail=[], fix=_fix_for(message)
        )


def _fix_for(message: str) -> str:
    lowered = message.lower()
    if "unknown instruction" in lowered or "unknown flag" in lowered or "<<" in message:
        return (
            "the engine's built-in Dockerfile frontend does not know this syntax (heredocs "
            "need a newer engine); rewrite the step without it, or build with docker buildx "
            "and ship the image by name"
        )
    if "failed to do request" in lowered or "failed to resolve source metadata" in lowered:
        return (
            "the engine could not fetch a base image (for the platform built, if it is not the "
            "engine's own); pull it first (docker pull --platform <os/arch> <image>), or use a "
            "base the engine has for that platform"
        )
    if "no active session" in lowered:
        return "this step needs a BuildKit client session: build with docker buildx, ship the image"
    return "fix the failing Dockerfile step shown above, then ship again"


@dataclass(frozen=True)
class BuildKitRequest:
    """The query of ``POST /build?version=2``."""

    tag: str
    dockerfile: str
    buildargs: dict[str, str]
    target: str | None
    platform: str | None
    labels: dict[str, str]
    cache_from: tuple[str, ...]
    no_cache: bool
    network_mode: str | None = None  # RUN steps' network, as docker build --network
    session: str | None = None  # a buildkit_session.Session's id: the context comes from it

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "version": "2",
            "t": self.tag,
            "dockerfile": self.dockerfile,
            "rm": "1",
            "forcerm": "1",
        }
        if self.buildargs:
            params["buildargs"] = json.dumps(self.buildargs)
        if self.target:
            params["target"] = self.target
        if self.platform:
            params["platform"] = self.platform
        if self.labels:
            params["labels"] = json.dumps(self.labels)
        if self.cache_from:
            params["cachefrom"] = json.dumps(list(self.cache_from))
        if self.no_cache:
            params["nocache"] = "1"
        if self.network_mode:
            params["networkmode"] = self.network_mode
        if self.session:
            # the session serves "context" and "dockerfile" (the Dockerfile's folder), so the
            # frontend wants the Dockerfile's name inside that folder, as the CLI sends it
            params["session"] = self.session
            params["remote"] = "client-session"
            params["dockerfile"] = Path(self.dockerfile).name
        return params


def post_build(
    api: Any, context: io.BytesIO | None, request: BuildKitRequest
) -> Iterable[dict[str, Any]]:
    """Start the build; the decoded JSON stream. ``api`` is docker-py's ``APIClient``."""
    response = api._post(  # private API of docker-py: see the module docstring
        api._url("/build"),
        data=context,
        params=request.params(),
        headers={"Content-Type": "application/x-tar"},
        stream=True,
        timeout=None,
    )
    api._raise_for_status(response)
    return api._stream_helper(response, decode=True)  # type: ignore[no-any-return]


def elapsed(started: float) -> float:
    return round(time.monotonic() - started, 3)
