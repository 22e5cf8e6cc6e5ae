"""Skip a build the engine would answer entirely from its cache: the build fingerprint.

A fully cached BuildKit build of the example app still costs ~0.2 s (a session, the context's
stats, the solve, the image export); a no-op ship is mostly that. When nothing BuildKit's cache
keys on has changed since the engine's previous build of this source, its result can only be
the image that build left under ``cloudship-build/<name>-<where>:<suffix>``, so ``ship()``
takes that image and does not ask the engine at all.

**The key** (sha256 over a canonical JSON document) holds:

- ``VERSION``, so a change to what goes in the key invalidates every recorded one;
- the builder (only ``"buildkit"`` is ever recorded), the engine address (``DOCKER_HOST``);
- the Dockerfile's path and bytes, and the ignore file's path and bytes;
- every entry of the context the session would offer, after the ignore file: listed by
  ``buildkit_session.walk`` with the same excludes ``Engine._buildkit_stream`` gives the
  session (the one matcher, docker-py's port of the engine's), each with its path, Go file
  mode (what fsutil sends), size, symlink target and, for a regular file, the sha256 of its
  bytes. Contents are hashed rather than trusted from ``mtime``: an edit that keeps the size
  and restores the mtime (``git checkout``, rsync, a tool that sets times) must rebuild, and
  BuildKit's cache keys on content too. On examples/monitor-app hashing the context costs
  0.3 ms and the whole key 6 ms, mostly the base image's inspect. The modification time is left
  out: it is not in BuildKit's cache key either (a touched file is rebuilt from the cache);
- build args, target stage, platform, ``cache_from``;
- the image id, in this engine, of every external image the Dockerfile names (``FROM``,
  ``COPY --from=``, ``RUN --mount=…,from=``), read with the project's Dockerfile parser
  (``dockerfile_lint.parse``, BuildKit's own): a base re-tagged to another image rebuilds.

**No key** (so the build runs) when the outcome may differ with everything above unchanged or
when it cannot be known: ``no_cache``; the classic builder (its context is a tar holding the
Dockerfile and ignore file, and it is only a fallback: one set of rules is checked, BuildKit's);
a ``# syntax=`` directive (a frontend image that may move); ``ADD`` of a URL or git repository
(remote content BuildKit re-checks on every build); an image name built from ``$ARG`` (what it
resolves to is the frontend's business); a referenced image the engine lacks; a Dockerfile or
context file that cannot be read.

**Where the key lives**: one small JSON file per build tag under
``$XDG_CACHE_HOME/cloudship/builds/`` (``~/.cache`` by default), holding the key and the image id
that build produced. A second tag (``…:<suffix>-fp-<key>``) was the alternative, but every
changed build would leave one more tag in the engine (someone must untag the old ones, racing
other ships), and a label cannot be added without a rebuild. The record is trusted only while
the build tag still names the recorded image id (checked with one inspect), so a removed or
re-tagged image rebuilds, and a record from another engine or another ship never matches an
image it did not describe. It is written to a temporary file and renamed over the old one
(atomic on POSIX): two ships at once leave one whole record, and whichever it is, it is
checked against the tag's image id before use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat as statmod
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudship.engine import BuildOptions, BuildResult
from cloudship.errors import CloudshipError
from cloudship.events import BuildReused, EventSink

if TYPE_CHECKING:
    from cloudship.engine import Engine

#: what goes into the key; bump it whenever that changes
VERSION = 1
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@)", re.IGNORECASE)
_SYNTAX = re.compile(r"#\s*syntax\s*=", re.IGNORECASE)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cloudship" / "builds"


def external_images(dockerfile: Path) -> list[str] | None:
    """The images from outside the build a Dockerfile names (in order, once each), or None
    when one cannot be told without building (see the module docstring)."""
    from cloudship.dockerfile_lint import parse

    text = dockerfile.read_text()
    if text.strip() and _SYNTAX.match(text.lstrip().splitlines()[0]):
        return None
    stages: set[str] = set()
    found: list[str] = []

    def name(ref: str) -> bool:
        if "$" in ref:
            return False
        if ref.lower() not in stages and ref != "scratch" and not ref.isdigit():
            found.append(ref)
        return True

    for instruction in parse(dockerfile):
        flags = [f.split("=", 1) for f in instruction.flags]
        if instruction.cmd == "FROM":
            if not instruction.args or not name(instruction.args[0]):
                return None
            if len(instruction.args) >= 3 and instruction.args[1].upper() == "AS":
                stages.add(instruction.args[2].lower())
        elif instruction.cmd in ("COPY", "ADD"):
            if instruction.cmd == "ADD" and any(
                _REMOTE.match(src) for src in instruction.args[:-1]
            ):
                return None
            for flag in flags:
                if flag[0] == "--from" and (len(flag) < 2 or not name(flag[1])):
                    return None
        elif instruction.cmd == "RUN":
            for flag in flags:
                if flag[0] != "--mount" or len(flag) < 2:
                    continue
                for option in flag[1].split(","):
                    key, _, value = option.partition("=")
                    if key == "from" and not name(value):
                        return None
    return list(dict.fromkeys(found))


def _context_entries(context: Path, dockerfile: str) -> list[list[Any]]:
    from cloudship import buildkit, buildkit_session

    excludes = buildkit.ignore_patterns(buildkit.ignore_file(context, dockerfile))
    rows: list[list[Any]] = []
    for entry in buildkit_session.walk(context, buildkit_session.Filters(excludes=excludes)):
        digest = ""
        if statmod.S_ISREG(entry.st.st_mode):
            sha = hashlib.sha256()
            with entry.full.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    sha.update(chunk)
            digest = sha.hexdigest()
        size = 0 if statmod.S_ISDIR(entry.st.st_mode) else entry.st.st_size
        rows.append([entry.path, buildkit_session.go_mode(entry.st), size, entry.linkname, digest])
    return rows


def key(
    engine: Engine,
    context: Path,
    *,
    dockerfile: str = "Dockerfile",
    buildargs: dict[str, str] | None = None,
    target: str | None = None,
    platform: str | None = None,
    cache_from: Sequence[str] = (),
    no_cache: bool = False,
) -> str | None:
    """The build's fingerprint, or None when this build must run (see the module docstring)."""
    if no_cache:
        return None
    builder = engine.builder()[0]
    if builder != "buildkit":
        return None
    from cloudship import buildkit

    try:
        path = context / dockerfile
        images = external_images(path)
        if images is None:
            return None
        resolved: dict[str, str] = {}
        for image in images:
            info = engine.inspect(image)
            if info is None:
                return None
            resolved[image] = info.id
        ignore = buildkit.ignore_file(context, dockerfile)
        document = {
            "version": VERSION,
            "builder": builder,
            "engine": os.environ.get("DOCKER_HOST", ""),
            "dockerfile": [dockerfile, hashlib.sha256(path.read_bytes()).hexdigest()],
            "ignore": None
            if ignore is None
            else [str(ignore.relative_to(context)), ignore.read_text()],
            "context": _context_entries(context, dockerfile),
            "buildargs": sorted((buildargs or {}).items()),
            "target": target,
            "platform": platform,
            "cache_from": list(cache_from),
            "images": resolved,
        }
    except (OSError, UnicodeDecodeError, ValueError, CloudshipError):
        return None  # unreadable or unparsable: the build says what is wrong
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def _record_path(tag: str) -> Path:
    named = os.environ.get("DOCKER_HOST", "") + "\0" + tag
    return cache_dir() / f"{hashlib.sha256(named.encode()).hexdigest()[:32]}.json"


def recorded(engine: Engine, tag: str, fingerprint: str) -> str | None:
    """The image id the last build under ``tag`` made with this fingerprint, if the engine
    still has it under ``tag``; else None."""
    try:
        record = json.loads(_record_path(tag).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != fingerprint:
        return None
    info = engine.inspect(tag)
    if info is None or info.id != record.get("image_id"):
        return None
    return info.id


def record(tag: str, fingerprint: str, image_id: str) -> None:
    """Remember that ``fingerprint`` built ``image_id`` under ``tag`` (atomically replaced)."""
    path = _record_path(tag)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".record-", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump({"tag": tag, "key": fingerprint, "image_id": image_id}, handle)
        os.replace(temporary, path)
    except OSError:
        return  # a read-only home: every ship builds, as before


@dataclass(frozen=True)
class Check:
    """One build's fingerprint: ``reused()`` before building, ``record()`` after."""

    tag: str
    fingerprint: str | None
    started: float
    reuse: bool = True  # False for no_cache or force: build, then record the result

    def reused(
        self, engine: Engine, platform: str | None, on_event: EventSink
    ) -> BuildResult | None:
        """The previous build's result when it can stand for this build (``BuildReused`` is
        emitted), else None: build."""
        if self.fingerprint is None or not self.reuse:
            return None
        image_id = recorded(engine, self.tag, self.fingerprint)
        if image_id is None:
            return None
        seconds = time.monotonic() - self.started
        on_event(BuildReused(image_id=image_id, seconds=seconds, platform=platform))
        return BuildResult(image_id, 0, 0, seconds, None, "buildkit", reused=True)

    def record(self, image_id: str) -> None:
        if self.fingerprint is not None:
            record(self.tag, self.fingerprint, image_id)


def check(engine: Engine, context: Path, options: BuildOptions, *, reuse: bool = True) -> Check:
    """Fingerprint the build of ``context`` about to run with ``options`` (the ones ``key``
    reads). Computed before the build: a file that changes while it runs then no longer
    matches. Without ``reuse`` (``no_cache``, ``force``) the build is never skipped, but its
    result is recorded: the next build would take its layers from the cache."""
    started = time.monotonic()
    fingerprint = key(
        engine,
        context,
        dockerfile=options.get("dockerfile", "Dockerfile"),
        buildargs=options.get("buildargs"),
        target=options.get("target"),
        platform=options.get("platform"),
        cache_from=options.get("cache_from", ()),
        no_cache=options.get("no_cache", False),
    )
    return Check(options["tag"], fingerprint, started, reuse=reuse)
