"""Watching an ECS rollout until it completes, fails, or runs out of time.

The ``services_stable`` waiter is not used: it ignores ``rolloutState`` and can report success
on a deployment the circuit breaker has rolled back (shared/CLOUD-FACTS.md §4.3;
fabfuel/ecs-deploy#185). Failure is detected from the rollout state, from the service no
longer pointing at the new task definition, and from the new revision's stopped tasks.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn

from botocore.exceptions import ClientError

from cloudship.errors import DeployError, HealthCheckFailed, ShipTimeoutError
from cloudship.events import DeployPhase, EventSink
from cloudship_aws.cloudwatch import log_tail
from cloudship_aws.errors import aws_errors, error_code
from cloudship_aws.session import AwsClients
from cloudship_aws.settings import AwsSettings
from cloudship_aws.taskdef import revision_id

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import ServiceTypeDef

LOG_TAIL = 20


def describe_service(
    clients: AwsClients, settings: AwsSettings, name: str
) -> ServiceTypeDef | None:
    """The service, or None when it (or its cluster) does not exist or was deleted."""
    with aws_errors(f"describing ECS service {name!r}", DeployError):
        try:
            found = clients.ecs.describe_services(cluster=settings.cluster, services=[name])
        except ClientError as exc:
            if error_code(exc) == "ClusterNotFoundException":
                return None
            raise
    for service in found.get("services", []):
        if service.get("status") != "INACTIVE":
            return service
    return None


class Rollout:
    """Watches deployments of one cluster's services."""

    def __init__(self, settings: AwsSettings, clients: AwsClients) -> None:
        self._settings = settings
        self._clients = clients

    def watch(
        self,
        name: str,
        td_arn: str,
        previous_td: str | None,
        deadline: float,
        timeout: float,
        on_event: EventSink,
    ) -> None:
        """Return when the deployment of ``td_arn`` is COMPLETED; otherwise make sure the
        previous revision serves again and raise.

        ``service.taskDefinition`` names the PRIMARY deployment's task definition, so once the
        circuit breaker rolls back it no longer names ``td_arn`` — that, or a FAILED rollout
        state on our deployment, is failure even if the service looks steady.
        """
        on_event(DeployPhase(phase="rollout", detail=f"waiting for {revision_id(td_arn)}"))
        started = datetime.now(UTC)
        while True:
            service = describe_service(self._clients, self._settings, name)
            if service is None:
                raise DeployError(f"ECS service {name!r} disappeared during the deploy")
            serving = service.get("taskDefinition", "")
            deployments = service.get("deployments", [])
            ours = [d for d in deployments if d.get("taskDefinition") == td_arn]
            failed = [d for d in ours if d.get("rolloutState") == "FAILED"]
            if serving != td_arn or failed:
                reason = (
                    failed[0].get("rolloutStateReason", "rollout FAILED")
                    if failed
                    else f"ECS replaced it with {revision_id(serving)}"
                )
                self._fail(name, td_arn, previous_td, serving, reason, [], on_event)
            primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
            if primary is not None and primary.get("rolloutState") == "COMPLETED":
                return
            stopped = self._stopped_tasks(name, td_arn, started)
            if stopped:
                reasons = "; ".join(reason for _, reason in stopped)
                self._fail(
                    name,
                    td_arn,
                    previous_td,
                    serving,
                    f"tasks stopped: {reasons}",
                    [task_id for task_id, _ in stopped],
                    on_event,
                )
            if time.monotonic() >= deadline:
                self._fail(
                    name,
                    td_arn,
                    previous_td,
                    serving,
                    f"the rollout did not complete within {timeout:g} s",
                    [],
                    on_event,
                    timed_out=True,
                )
            time.sleep(min(self._settings.poll_interval, max(deadline - time.monotonic(), 0)))

    def _stopped_tasks(self, name: str, td_arn: str, since: datetime) -> list[tuple[str, str]]:
        """``(task id, why)`` of this revision's tasks started ``since`` that have stopped.

        Older tasks are ignored: ECS lists stopped tasks for about an hour, and a rollback to
        a revision finds the tasks that were stopped when it was replaced. (Clock skew only
        delays fail-fast: the circuit breaker still catches the failure.)
        """
        cluster = self._settings.cluster
        with aws_errors(f"listing the stopped tasks of {name!r}", DeployError):
            arns = self._clients.ecs.list_tasks(
                cluster=cluster, serviceName=name, desiredStatus="STOPPED"
            ).get("taskArns", [])
            if not arns:
                return []
            tasks = self._clients.ecs.describe_tasks(cluster=cluster, tasks=arns[:100])
        found = []
        for task in tasks.get("tasks", []):
            created = task.get("createdAt")
            if task.get("taskDefinitionArn") != td_arn or (created is not None and created < since):
                continue
            why = task.get("stoppedReason") or task.get("stopCode") or "stopped"
            exits = [
                f"exit code {c['exitCode']}"
                for c in task.get("containers", [])
                if c.get("exitCode") not in (None, 0)
            ]
            task_id = task.get("taskArn", "").rsplit("/", 1)[-1]
            found.append((task_id, ", ".join([why, *exits])))
        return found

    def _fail(
        self,
        name: str,
        td_arn: str,
        previous_td: str | None,
        serving: str,
        reason: str,
        task_ids: list[str],
        on_event: EventSink,
        *,
        timed_out: bool = False,
    ) -> NoReturn:
        """Make the last good revision serve (unless ECS already did) and raise."""
        rolled_back_to: str | None = None
        if serving and serving != td_arn:
            rolled_back_to = revision_id(serving)
        elif previous_td:
            with aws_errors(f"rolling {name!r} back to {revision_id(previous_td)}", DeployError):
                self._clients.ecs.update_service(
                    cluster=self._settings.cluster, service=name, taskDefinition=previous_td
                )
            rolled_back_to = revision_id(previous_td)
        if rolled_back_to:
            on_event(DeployPhase(phase="rollback", detail=f"{rolled_back_to} serves again"))
        tail = log_tail(self._clients.logs, name, task_ids, LOG_TAIL)
        message = f"ECS deployment of {revision_id(td_arn)} for {name!r} failed: {reason}"
        fix = (
            f"read the log lines above; `cloudship logs {name} --target aws` shows more, "
            "and the ECS console shows the service events"
        )
        if timed_out:
            restored = (
                f"rolled back: {rolled_back_to} serves again"
                if rolled_back_to
                else "nothing to roll back to"
            )
            lines = "\n".join(f"    {line}" for line in tail) or "    (no output)"
            raise ShipTimeoutError(
                f"{message}\n  {restored}\n  container log (last lines):\n{lines}",
                fix="pass a longer timeout= to ship(), or check why the tasks are not healthy",
            )
        raise HealthCheckFailed(message, log_tail=tail, rolled_back_to=rolled_back_to, fix=fix)
