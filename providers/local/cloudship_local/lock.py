"""One ship (or rollback, or destroy) per local service at a time.

The lock is an ``flock`` on a file under the cloudship data folder, one file per engine,
project and service. The kernel drops an ``flock`` the moment its process dies, however it
dies (SIGKILL included), so a lock left by a killed ship is broken safely by construction:
there is no lease to expire and no pid to guess about. The holder writes who it is into the
file, so the process that is refused can say which ship it waited for.

Why not a lock on the engine (a labelled container): a container outlives the process that
made it, so a dead holder could only be detected by guessing (pid + hostname), and a remote
engine gives no way to check a pid. The cost of the file is that two machines sharing one
remote engine are not serialised with each other (see docs/local-target.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cloudship.errors import ConcurrentShipError
from cloudship.events import DeployPhase, EventSink, ignore


def lock_path(folder: Path, engine: str, project: str, service: str) -> Path:
    key = hashlib.sha256(engine.encode()).hexdigest()[:12]
    return folder / "locks" / f"{key}-{project}-{service}.lock"


def _holder(path: Path) -> str:
    try:
        raw = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        raw = {}
    if not raw:
        return "another cloudship process"
    where = f"pid {raw.get('pid')} on {raw.get('host')}, since {raw.get('since')}"
    return f"{raw.get('what', 'a ship')} ({where})"


@contextlib.contextmanager
def service_lock(
    path: Path,
    *,
    service: str,
    what: str,
    wait: float = 0.0,
    on_event: EventSink = ignore,
) -> Iterator[None]:
    """Hold the service's lock for the block; wait up to ``wait`` seconds for another holder,
    then raise ``ConcurrentShipError`` naming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if time.monotonic() >= deadline:
                    raise ConcurrentShipError(
                        f"service {service!r} is busy: {holder} holds its lock",
                        holder=holder,
                        fix="wait for it to finish and ship again, or let ships queue with "
                        "lock_wait= (CLOUDSHIP_LOCAL_LOCK_WAIT, seconds)",
                    ) from None
                if not told:
                    on_event(DeployPhase(phase="waiting", detail=f"for {holder}"))
                    told = True
                time.sleep(0.1)
        record = {
            "what": what,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def if_free(path: Path) -> Iterator[bool]:
    """Hold the lock for the block if nobody does (yields True), else yield False at once:
    for ``status``, which tidies leftovers only when no ship is under way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
