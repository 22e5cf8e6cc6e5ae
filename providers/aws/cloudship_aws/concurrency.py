"""One ship per ECS service at a time, with ECS's own state as the arbiter.

ECS has no conditional ``UpdateService`` (no ETag, no expected revision:
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html), so two ships
are kept apart by optimistic checks around the switch:

1. every task definition cloudship registers carries the id of the ship that registered it
   (tag ``cloudship:ship``), so another ship can be named;
2. a ship remembers the service as it read it at its start (``taskDefinition``, which ECS
   documents as the PRIMARY deployment's, and that deployment's id); just before switching it
   reads the service again, and if another ship switched it in between, it raises
   ``ConcurrentShipError`` naming that ship and does not switch;
3. ``UpdateService`` answers with the service's deployments: one that was not there at the
   start and is not ours means another ship switched between the re-read and ours — its
   revision is put back and ``ConcurrentShipError`` raised (its update is not lost);
4. while the rollout is watched, a PRIMARY task definition that is no longer ours, without
   ECS's circuit breaker having failed ours, is another ship's: ``ConcurrentShipError``, not a
   health failure (``rollout.Rollout.watch``).

So two ships never both succeed with one revision, and neither reports success for a
revision another ship has replaced.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudship.errors import ConcurrentShipError, DeployError
from cloudship_aws.errors import aws_errors
from cloudship_aws.session import AwsClients
from cloudship_aws.taskdef import SHIP_TAG, revision_id

# Tag values allow letters, digits, spaces and + - = . _ : / @
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Tag.html)
_TAG_UNSAFE = re.compile(r"[^\w .:/=+@-]")


def new_ship_id() -> str:
    """A readable, unique id for one deploy: who, where, when."""
    host = _TAG_UNSAFE.sub("-", socket.gethostname())[:64]
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"ship {uuid.uuid4().hex[:8]} pid {os.getpid()} on {host} at {when}"


@dataclass(frozen=True)
class Seen:
    """The service as a ship read it at its start."""

    task_definition: str | None
    primary_id: str | None
    deployment_ids: frozenset[str]

    @classmethod
    def of(cls, service: Mapping[str, Any] | None) -> Seen:
        deployments = (service or {}).get("deployments", [])
        primary: Mapping[str, Any] = next(
            (d for d in deployments if d.get("status") == "PRIMARY"), {}
        )
        return cls(
            task_definition=(service or {}).get("taskDefinition"),
            primary_id=primary.get("id"),
            deployment_ids=frozenset(str(d.get("id")) for d in deployments),
        )


def owner_of(clients: AwsClients, td_arn: str) -> str:
    """The ship that registered ``td_arn`` (its ``SHIP_TAG``), or a description of it."""
    with aws_errors("reading which ship registered a task definition", DeployError):
        tags = clients.ecs.list_tags_for_resource(resourceArn=td_arn).get("tags", [])
    found = next((t.get("value") for t in tags if t.get("key") == SHIP_TAG), None)
    return str(found) if found else f"a deploy outside this ship ({revision_id(td_arn)})"


def concurrent(service: str, holder: str, what: str) -> ConcurrentShipError:
    return ConcurrentShipError(
        f"another ship changed ECS service {service!r} {what}: {holder}",
        holder=holder,
        fix="let that ship finish, then ship again (`cloudship status "
        f"{service} --target aws` shows what serves)",
    )


def check_unchanged(
    clients: AwsClients, service: str, seen: Seen, now: Mapping[str, Any] | None
) -> None:
    """Before the switch: ``ConcurrentShipError`` when the service is no longer as ``seen``."""
    current = Seen.of(now)
    if (current.task_definition, current.primary_id) == (seen.task_definition, seen.primary_id):
        return
    if current.task_definition is None:
        raise DeployError(
            f"ECS service {service!r} was deleted while this ship was preparing",
            fix="ship again",
        )
    raise concurrent(service, owner_of(clients, current.task_definition), "since this ship read it")


def displaced(seen: Seen, answer: Mapping[str, Any], ours: str) -> str | None:
    """After ``UpdateService``: the task definition of a deployment another ship started after
    ``seen`` was read (and this update replaced), or None."""
    for deployment in answer.get("deployments", []):
        if (
            deployment.get("status") == "PRIMARY"
            or str(deployment.get("id")) in seen.deployment_ids
        ):
            continue
        td = deployment.get("taskDefinition")
        if td and td not in (ours, seen.task_definition):
            return str(td)
    return None
