"""Revision ids and the rollback rule: the core's, shared by every runtime.

Every runtime numbers its revisions ``r1, r2, …`` in the order it created them and keeps the
cloud's own id (an ECS task-definition ARN, a Container Apps revision name, a container id) as
``Revision.native_id``. Users name revisions the same way on every target: ``rollback(to="r2")``
and ``cloudship rollback NAME --to r2`` (``"2"`` and the native id are accepted too).

The default rollback target is the newest revision older than the serving one that served
healthily; a revision that failed its health gate (``state="failed"``) is never chosen by
default, and naming one explicitly is refused with the list of healthy ones. A runtime builds
its ``Revision`` list and calls :func:`choose_rollback`; it never writes its own chooser, so the
rule and the messages are the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cloudship.errors import ConfigError, RevisionNotFoundError, ServiceNotFoundError

if TYPE_CHECKING:
    from cloudship.runtime import Revision

_REVISION = re.compile(r"[rR]?([0-9]{1,9})")


def revision_id(number: int) -> str:
    """``3`` → ``"r3"``: the one format users see on every runtime."""
    if number < 1:
        raise ValueError(f"revision numbers start at 1, not {number}")
    return f"r{number}"


def parse_revision(text: object) -> int:
    """``"r3"``, ``"R3"`` or ``"3"`` → ``3``; ``ConfigError`` for anything else."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ConfigError(
            f"a revision is named like 'r2', not a {type(text).__name__}",
            fix="pass to='r2' (the ids `cloudship status NAME` lists)",
        )
    match = _REVISION.fullmatch(str(text).strip())
    if not match or int(match[1]) < 1:
        raise ConfigError(
            f"invalid revision {str(text)[:40]!r}",
            fix="name a revision as `cloudship status NAME` lists it, e.g. 'r2'",
        )
    return int(match[1])


def _find(revisions: Sequence[Revision], to: str) -> Revision | None:
    by_native = next((r for r in revisions if r.native_id and r.native_id == to), None)
    if by_native is not None:
        return by_native
    if not isinstance(to, str):
        parse_revision(to)  # a wrong type is bad input: ConfigError
    match = _REVISION.fullmatch(to.strip())
    number = int(match[1]) if match else None
    return next((r for r in revisions if r.number == number), None)


def _listing(revisions: Sequence[Revision]) -> str:
    return ", ".join(f"{r.id} ({r.state})" for r in sorted(revisions, key=lambda r: -r.number))


def choose_rollback(service: str, revisions: Sequence[Revision], to: str | None) -> Revision:
    """The revision a rollback of ``service`` serves.

    ``to=None``: the newest revision older than the serving one (or than the newest, when none
    serves) whose state is not ``failed``. ``to="rN"``: that revision, unless it failed its
    health gate. Raises ``RevisionNotFoundError`` with the revisions there are; returns the
    serving revision itself when ``to`` names it (the runtime then changes nothing).
    """
    if not revisions:
        raise ServiceNotFoundError(
            f"service {service!r} has no revisions", fix="ship it first, or check the name"
        )
    serving = next((r for r in revisions if r.state == "serving"), None)
    if to is not None:
        chosen = _find(revisions, to)
        if chosen is None:
            raise RevisionNotFoundError(
                f"service {service!r} has no revision {to!r}",
                fix=f"choose one of: {_listing(revisions)}",
            )
        if chosen.state == "failed":
            healthy = [r for r in revisions if r.state != "failed"]
            raise RevisionNotFoundError(
                f"revision {chosen.id} of {service!r} failed its health gate; it never served",
                fix=f"choose a healthy one: {_listing(healthy)}" if healthy else None,
            )
        return chosen
    below = serving.number if serving else max(r.number for r in revisions) + 1
    earlier = sorted(
        (r for r in revisions if r.number < below and r.state != "failed"),
        key=lambda r: r.number,
        reverse=True,
    )
    if not earlier:
        current = f"than {serving.id} " if serving else ""
        raise RevisionNotFoundError(
            f"service {service!r} has no healthy revision older {current}to roll back to",
            fix=f"its revisions are {_listing(revisions)}: ship a fixed version instead",
        )
    return earlier[0]


def is_unchanged(serving_fingerprint: str | None, wanted: str, *, force: bool) -> bool:
    """The one "nothing to do" rule: the serving revision already runs exactly ``wanted``
    (image digest + spec fingerprint, credentials hash included where a runtime stores them)
    and the caller did not ask for a new revision anyway."""
    return not force and serving_fingerprint is not None and serving_fingerprint == wanted


def service_not_found(service: str, where: str) -> ServiceNotFoundError:
    """The one message for a service a target does not run (status, logs, rollback, destroy)."""
    return ServiceNotFoundError(
        f"service {service!r} is not deployed on {where}",
        fix="check the name (`cloudship services`), or ship it first",
    )


__all__ = [
    "choose_rollback",
    "is_unchanged",
    "parse_revision",
    "revision_id",
    "service_not_found",
]
