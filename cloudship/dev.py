"""``dev()``: the fast loop — ship, watch the folder, re-ship on every save.

::

    from cloudship import dev
    dev("examples/monitor-app", target="local", port=8000)   # Ctrl-C stops watching

Each save goes through the very same ``ship()``: the same layer cache (only the layers after the
changed file are rebuilt), the same skip-push check (only new layers move) and the same health
gate. A save that fails to build or fails the gate changes nothing that serves: the runtime
keeps (or rolls back to) the last good revision, the iteration carries the error, and the next
good save serves again. Stopping (Ctrl-C, ``stop.set()`` or ``iterations=``) leaves the service
running unless ``rm=True``.

Watching is watchfiles' (a maintained Rust notify binding) in a thread of its own that only
queues batches of changed paths, so a save made while a ship is running is never lost: it is
shipped right after. Paths ``.dockerignore`` excludes never trigger a ship (they are not in the
build context); docker-py's own ``PatternMatcher`` reads the patterns, as ``docker build`` does.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from cloudship.errors import CloudshipError, ConfigError, SourceError
from cloudship.events import Notice, ignore

if TYPE_CHECKING:
    from cloudship.options import ShipOptions
    from cloudship.shipment import Shipment
    from cloudship.targets import Target

#: quiet time after the last change before a batch of changes is shipped. An editor's save (a
#: write, or a temp file and a rename) lands within a few ms, so 50 ms still groups it; watchfiles
#: then yields 0.05 to 0.1 s after the save (0.1 to 0.23 s at 0.1: benchmarks/README.md, dev_loop).
DEFAULT_DEBOUNCE = 0.05


@dataclass(frozen=True)
class DevIteration:
    """One pass of the loop: the first ship, then one per batch of saved files.

    ``seconds`` runs from the save (the oldest changed file's modification time; the start,
    for the first pass) to serving, or to the failure. ``url`` is what serves after this
    pass: the new revision, or the last good one when ``error`` is set.
    """

    number: int
    changed: tuple[str, ...]
    shipment: Shipment | None
    error: CloudshipError | None
    seconds: float
    url: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def _ignore_patterns(folder: Path) -> list[str]:
    """``.dockerignore``'s patterns, read the way docker-py's build reads them."""
    try:
        text = (folder / ".dockerignore").read_text(encoding="utf-8")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


class _ContextFilter:
    """True for a changed path that is part of the build context (watchfiles' default filter
    first: editor swap files, ``.git``, ``__pycache__``)."""

    def __init__(self, folder: Path, dockerfile: str) -> None:
        from watchfiles import DefaultFilter

        self._folder = folder.resolve()
        self._default = DefaultFilter()
        # docker always sends the Dockerfile and .dockerignore, even when they are ignored
        self._always = {dockerfile, ".dockerignore"}
        self.reload()

    def reload(self) -> None:
        from docker.utils.build import PatternMatcher

        self._matcher = PatternMatcher(_ignore_patterns(self._folder))

    def relative(self, path: str) -> str | None:
        try:
            return Path(path).resolve().relative_to(self._folder).as_posix()
        except ValueError:
            return None

    def __call__(self, change: Any, path: str) -> bool:
        relative = self.relative(path)
        if relative is None or not self._default(change, path):
            return False
        return relative in self._always or not self._matcher.matches(relative)


class _Watcher(threading.Thread):
    """Queues ``(changed paths, save time)`` batches until ``stop`` is set."""

    def __init__(self, folder: Path, dockerfile: str, debounce: float, stop: threading.Event):
        super().__init__(name="cloudship-dev-watch", daemon=True)
        self.folder = folder
        self.filter = _ContextFilter(folder, dockerfile)
        self.debounce = debounce
        self.stop = stop
        self.batches: queue.Queue[set[str]] = queue.Queue()
        self.ready = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        from watchfiles import watch

        step = max(1, int(self.debounce * 1000))
        try:
            self.ready.set()
            for changes in watch(
                self.folder,
                watch_filter=self.filter,
                step=step,
                debounce=max(1600, step * 4),
                stop_event=self.stop,
                rust_timeout=200,
                yield_on_timeout=False,
                raise_interrupt=False,
            ):
                paths = {p for _, p in changes}
                if any(Path(p).name == ".dockerignore" for p in paths):
                    self.filter.reload()
                self.batches.put(paths)
        except BaseException as exc:  # surfaced in the loop, never lost in a thread
            self.failure = exc
            self.stop.set()

    def next_batch(self) -> tuple[tuple[str, ...], float] | None:
        """Every path saved since the last call (waiting for at least one), and the oldest
        save time among them; None once stopped."""
        while not self.stop.is_set():
            try:
                paths = self.batches.get(timeout=0.1)
            except queue.Empty:
                continue
            while True:  # saves made during the last ship are shipped together
                try:
                    paths |= self.batches.get_nowait()
                except queue.Empty:
                    break
            relative = sorted({r for p in paths if (r := self.filter.relative(p)) is not None})
            return tuple(relative), _saved_at(paths)
        if self.failure is not None and not isinstance(self.failure, KeyboardInterrupt):
            raise CloudshipError(
                f"watching {self.folder} failed: {self.failure}",
                fix="check that the folder exists and is readable",
            ) from self.failure
        return None


def _saved_at(paths: Iterable[str]) -> float:
    times = []
    for path in paths:
        try:
            times.append(Path(path).stat().st_mtime)
        except OSError:  # deleted: it was saved no later than now
            continue
    now = time.time()
    return min([t for t in times if t <= now] or [now])


def _check(folder: Path, target: object, debounce: object, iterations: object) -> None:
    if not folder.is_dir():
        raise SourceError(
            f"no such directory: {folder}" if not folder.exists() else f"{folder} is a file",
            fix="cloudship dev watches a directory with a Dockerfile",
        )
    if not isinstance(target, str | None) and not hasattr(target, "runtime"):
        raise ConfigError("dev ships to one target", fix="pass target='local' (one name)")
    if (
        isinstance(debounce, bool)
        or not isinstance(debounce, int | float)
        or not 0 <= debounce <= 60
    ):
        raise ConfigError("debounce must be between 0 and 60 seconds", fix="pass debounce=0.05")
    if iterations is not None and (
        isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1
    ):
        raise ConfigError("iterations must be a positive number", fix="pass iterations=3")


class _Loop:
    """The state one ``dev()`` carries from pass to pass."""

    def __init__(self, folder: Path, target: str | Target | None, options: dict[str, Any]):
        self.folder = folder
        self.target = target
        self.options = options
        self.history: list[DevIteration] = []
        self.serving: Shipment | None = None

    def run_pass(self, changed: tuple[str, ...], saved: float) -> DevIteration:
        """Ship once; a refusal or failure is the pass's error, except bad input on the very
        first pass (nothing was ever shipped: the loop would only repeat it)."""
        from cloudship.api import ship

        shipment: Shipment | None = None
        error: CloudshipError | None = None
        try:
            shipment = ship(self.folder, self.target, **self.options)
        except ConfigError as exc:
            if not self.history:
                raise
            error = exc
        except CloudshipError as exc:
            error = exc
        if shipment is not None:
            self.serving = shipment
            self.options["name"] = shipment.name  # one service, even if the folder is renamed
        url = self.serving.url if self.serving else None
        seconds = round(time.time() - saved, 3)
        iteration = DevIteration(len(self.history) + 1, changed, shipment, error, seconds, url)
        self.history.append(iteration)
        return iteration


def dev(
    source: str | Path = ".",
    target: str | Target | None = None,
    *,
    rm: bool = False,
    debounce: float = DEFAULT_DEBOUNCE,
    iterations: int | None = None,
    stop: threading.Event | None = None,
    on_iteration: Callable[[DevIteration], None] | None = None,
    **options: Unpack[ShipOptions],
) -> list[DevIteration]:
    """Ship ``source`` to ``target``, then re-ship it every time a file in it is saved.

    ``options`` are ``ship()``'s (``name``, ``port``, ``env``, ...); ``on_event`` gets every
    ship's progress events and a ``Notice`` when watching starts. ``on_iteration`` is called
    after each pass with its ``DevIteration``. The loop ends on Ctrl-C (``KeyboardInterrupt``),
    when ``stop`` is set, or after ``iterations`` passes, and returns every pass; the service
    keeps running unless ``rm=True`` (then it is destroyed).

    Bad input (not a directory, invalid options, several targets) raises before anything is
    built; so does a first pass refused as bad input (``ConfigError``). Later failures are
    reported in the pass and the loop goes on: the last good revision keeps serving.
    """
    from cloudship.api import destroy
    from cloudship.config import AppSettings, find_config, load_settings

    folder = Path(source)
    _check(folder, target, debounce, iterations)
    from cloudship.options import read_options  # pydantic: on the first call, not on import

    opts = read_options(options)
    sink = opts.on_event or ignore
    dockerfile = load_settings(AppSettings, find_config(folder, Path.cwd()).app).dockerfile
    stop = stop or threading.Event()
    watcher = _Watcher(folder, dockerfile, debounce, stop)
    watcher.start()
    watcher.ready.wait(5)
    loop = _Loop(folder, target, dict(options))
    try:
        batch: tuple[tuple[str, ...], float] | None = ((), time.time())
        while batch is not None:
            iteration = loop.run_pass(*batch)
            if on_iteration is not None:
                on_iteration(iteration)
            if iterations is not None and len(loop.history) >= iterations:
                break
            if len(loop.history) == 1:
                sink(Notice(message=f"watching {folder} for changes (Ctrl-C stops)"))
            batch = watcher.next_batch()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        watcher.join(timeout=5)
        if rm and loop.serving is not None:
            destroy(loop.serving.name, target, missing_ok=True, **dict(opts.settings or {}))
    return loop.history


__all__ = ["DEFAULT_DEBOUNCE", "DevIteration", "dev"]
