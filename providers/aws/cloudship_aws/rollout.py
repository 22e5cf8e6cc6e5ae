"""Watching an ECS rollout until it completes, fails, or runs out of time.

The ``services_stable`` waiter is not used: it ignores ``rolloutState`` and can report success
on a deployment the circuit breaker has rolled back (shared/CLOUD-FACTS.md §4.3;
fabfuel/ecs-deploy#185). Failure is detected from the rollout state, from the service no
longer pointing at the new task definition, and from the new revision's stopped tasks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import ClientError

from cloudship.errors import DeployError, HealthCheckFailed, ShipTimeoutError
from cloudship.events import DeployPhase, EventSink
from cloudship_aws import concurrency
from cloudship_aws.cloudwatch import log_tail
from cloudship_aws.errors import aws_errors, error_code
from cloudship_aws.session import AwsClients
from cloudship_aws.settings import AwsSettings
from cloudship_aws.taskdef import revision_id

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import ServiceTypeDef

LOG_TAIL = 20
EVENTS_SHOWN = 10
#: tag on a task definition whose deploy failed cloudship's gate
GATE_TAG = "cloudship:gate"

# Why ECS stopped a task, by what it means for the deploy
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html,
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-errors.html).
# The app's own doing: it exited, or failed the health checks. Failing at once is right: ECS
# would only start the same image again until the circuit breaker trips.
_APP_FAILURES = (
    "essential container in task exited",
    "task failed container health checks",
    "task failed elb health checks",
    "outofmemoryerror",
)
# Transient on a first deploy: the execution role or its secrets policy not visible yet (IAM
# is eventually consistent), an ENI not provisioned in time, capacity taken back. ECS starts
# a replacement; if it keeps failing, the circuit breaker marks the rollout FAILED, which
# ends the watch with these reasons in the message.


def describe_service(
    clients: AwsClients, settings: AwsSettings, name: str, *, draining: bool = False
) -> ServiceTypeDef | None:
    """The service, or None when it (or its cluster) does not exist or was deleted.

    A deleted service stays ``DRAINING`` until its tasks have stopped, then turns ``INACTIVE``
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html); a
    DRAINING service is returned only when ``draining`` is asked for, since only a deploy
    (which must wait for it) cares."""
    with aws_errors(f"describing ECS service {name!r}", DeployError):
        try:
            found = clients.ecs.describe_services(cluster=settings.cluster, services=[name])
        except ClientError as exc:
            if error_code(exc) == "ClusterNotFoundException":
                return None
            raise
    for service in found.get("services", []):
        state = service.get("status")
        if state == "ACTIVE" or (draining and state == "DRAINING"):
            return service
    return None


def is_app_failure(task: Mapping[str, Any]) -> bool:
    """True when a stopped task failed because of the app itself (it exited non-zero, or was
    killed for failing its health checks); False for the transient start failures ECS retries."""
    reason = str(task.get("stoppedReason", "")).lower()
    exits = [c.get("exitCode") for c in task.get("containers", [])]
    if "essential container in task exited" in reason:
        return any(code not in (None, 0) for code in exits) or not exits
    # Anything else (TaskFailedToStart, SpotInterruption, TerminationNotice, reasons not known
    # here): ECS starts a replacement, and the circuit breaker decides if that keeps failing.
    return any(fragment in reason for fragment in _APP_FAILURES)


def _describe_stop(task: Mapping[str, Any]) -> str:
    why = str(task.get("stoppedReason") or task.get("stopCode") or "stopped")
    exits = [
        f"exit code {c['exitCode']}"
        for c in task.get("containers", [])
        if c.get("exitCode") not in (None, 0)
    ]
    return ", ".join([why, *exits])


def _when(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


class Rollout:
    """Watches deployments of one cluster's services."""

    def __init__(self, settings: AwsSettings, clients: AwsClients) -> None:
        self._settings = settings
        self._clients = clients

    def wait_inactive(self, name: str, deadline: float, timeout: float) -> None:
        """Wait until a deleted (DRAINING) ``name`` is INACTIVE: ECS refuses to create a
        service whose name is ACTIVE or DRAINING
        (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html)."""
        while True:
            service = describe_service(self._clients, self._settings, name, draining=True)
            if service is None:
                return
            if service.get("status") != "DRAINING":
                return
            if time.monotonic() >= deadline:
                raise ShipTimeoutError(
                    f"ECS service {name!r} was deleted and is still DRAINING (its tasks are "
                    f"stopping) after {timeout:g} s; ECS cannot create it again until then",
                    fix="ship again in a minute, or pass a longer timeout= (the wait counts "
                    "against it)",
                )
            time.sleep(min(self._settings.poll_interval, max(deadline - time.monotonic(), 0)))

    def watch(
        self,
        name: str,
        td_arn: str,
        previous_td: str | None,
        deadline: float,
        timeout: float,
        on_event: EventSink,
        *,
        target_group: str | None = None,
    ) -> None:
        """Return when the deployment of ``td_arn`` is COMPLETED (and, behind a load
        balancer, its tasks are healthy targets); otherwise make sure the previous revision
        serves again and raise.

        ``service.taskDefinition`` names the PRIMARY deployment's task definition, so once the
        circuit breaker rolls back it no longer names ``td_arn`` — that, or a FAILED rollout
        state on our deployment, is failure even if the service looks steady. A stopped task
        fails the watch at once only when the app itself failed (``is_app_failure``); transient
        start failures are remembered and reported if the deploy fails later. A PRIMARY task
        definition that is neither ours nor (after ECS's rollback) the previous one is another
        ship's: ``ConcurrentShipError``.
        """
        on_event(DeployPhase(phase="rollout", detail=f"waiting for {revision_id(td_arn)}"))
        # ECS timestamps come from AWS's clock: allow a little skew for "since the deploy".
        started = datetime.now(UTC) - timedelta(seconds=5)
        transient: dict[str, str] = {}
        service: Mapping[str, Any] | None = None
        while True:
            service = describe_service(self._clients, self._settings, name)
            if service is None:
                raise DeployError(f"ECS service {name!r} disappeared during the deploy")
            serving = service.get("taskDefinition", "")
            deployments = service.get("deployments", [])
            ours = [d for d in deployments if d.get("taskDefinition") == td_arn]
            failed = [d for d in ours if d.get("rolloutState") == "FAILED"]
            context = _Context(service, started, transient)
            if serving != td_arn and not failed and (ours or serving != previous_td):
                # Not ECS's circuit breaker (it marks ours FAILED and goes back to the previous
                # revision): another ship switched the service (concurrency.py). Nothing is
                # rolled back or marked: that ship owns the service now.
                raise concurrency.concurrent(
                    name,
                    concurrency.owner_of(self._clients, serving),
                    f"during the rollout of {revision_id(td_arn)} ({revision_id(serving)} serves)",
                )
            if serving != td_arn or failed:
                reason = (
                    failed[0].get("rolloutStateReason", "rollout FAILED")
                    if failed
                    else f"ECS replaced it with {revision_id(serving)}"
                )
                self._fail(name, td_arn, previous_td, serving, reason, context, on_event)
            primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
            if (
                primary is not None
                and primary.get("rolloutState") == "COMPLETED"
                and self._targets_ready(name, td_arn, service, target_group)
            ):
                return
            for task in self._stopped_tasks(name, td_arn, started):
                task_id = str(task.get("taskArn", "")).rsplit("/", 1)[-1]
                if is_app_failure(task):
                    context.task_ids.append(task_id)
                    self._fail(
                        name,
                        td_arn,
                        previous_td,
                        serving,
                        f"tasks stopped: {_describe_stop(task)}",
                        context,
                        on_event,
                    )
                if task_id not in transient:
                    transient[task_id] = _describe_stop(task)
                    on_event(
                        DeployPhase(
                            phase="retry", detail=f"ECS restarts a task: {transient[task_id]}"
                        )
                    )
            if time.monotonic() >= deadline:
                self._fail(
                    name,
                    td_arn,
                    previous_td,
                    serving,
                    f"the rollout did not complete within {timeout:g} s",
                    context,
                    on_event,
                    timed_out=True,
                )
            time.sleep(min(self._settings.poll_interval, max(deadline - time.monotonic(), 0)))

    def _targets_ready(
        self, name: str, td_arn: str, service: Mapping[str, Any], target_group: str | None
    ) -> bool:
        """Behind a load balancer: as many of ``td_arn``'s running tasks as desired are
        ``healthy`` targets of ``target_group`` (ECS registers each task's private IP,
        https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-load-balancing.html)."""
        desired = int(service.get("desiredCount", 0))
        if target_group is None or desired == 0:
            return True
        ips = self._task_ips(name, td_arn)
        if not ips:
            return False
        with aws_errors("reading the target health of the load balancer", DeployError):
            health = self._clients.elbv2.describe_target_health(TargetGroupArn=target_group)
        healthy = {
            d.get("Target", {}).get("Id")
            for d in health.get("TargetHealthDescriptions", [])
            if d.get("TargetHealth", {}).get("State") == "healthy"
        }
        return len(ips & healthy) >= desired

    def _task_ips(self, name: str, td_arn: str) -> set[str]:
        cluster = self._settings.cluster
        with aws_errors(f"listing the running tasks of {name!r}", DeployError):
            arns = self._clients.ecs.list_tasks(
                cluster=cluster, serviceName=name, desiredStatus="RUNNING"
            ).get("taskArns", [])
            if not arns:
                return set()
            tasks = self._clients.ecs.describe_tasks(cluster=cluster, tasks=arns[:100])
        return {
            str(detail.get("value"))
            for task in tasks.get("tasks", [])
            if task.get("taskDefinitionArn") == td_arn and task.get("lastStatus") == "RUNNING"
            for attachment in task.get("attachments", [])
            if attachment.get("type") == "ElasticNetworkInterface"
            for detail in attachment.get("details", [])
            if detail.get("name") == "privateIPv4Address"
        }

    def _stopped_tasks(self, name: str, td_arn: str, since: datetime) -> list[Mapping[str, Any]]:
        """This revision's tasks started ``since`` that have stopped.

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
        found: list[Mapping[str, Any]] = []
        for task in tasks.get("tasks", []):
            created = _when(task.get("createdAt"))
            if task.get("taskDefinitionArn") != td_arn or (created is not None and created < since):
                continue
            found.append(task)
        return found

    def _fail(
        self,
        name: str,
        td_arn: str,
        previous_td: str | None,
        serving: str,
        reason: str,
        context: _Context,
        on_event: EventSink,
        *,
        timed_out: bool = False,
    ) -> NoReturn:
        """Make the last good revision serve (unless ECS already did) and raise, saying what
        ECS said: the service events since the deploy began, the stopped tasks' reasons and
        the containers' last log lines."""
        # Marked on the task definition so that status and rollback report it "failed" and it
        # is never a default rollback target (ECS marks only circuit-breaker failures FAILED).
        with aws_errors(f"marking {revision_id(td_arn)} of {name!r} as failed", DeployError):
            self._clients.ecs.tag_resource(
                resourceArn=td_arn, tags=[{"key": GATE_TAG, "value": "failed"}]
            )
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
        task_ids = [*context.task_ids, *context.transient]
        tail = log_tail(self._clients.logs, name, task_ids, LOG_TAIL)
        message = (
            f"ECS deployment of {revision_id(td_arn)} for {name!r} failed: {reason}{context.text()}"
        )
        fix = (
            f"read the service events and log lines above; `cloudship logs {name} --target aws` "
            "shows more"
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
                fix="pass a longer timeout= to ship(), or read the events above for why the "
                "tasks are not healthy",
            )
        raise HealthCheckFailed(message, log_tail=tail, rolled_back_to=rolled_back_to, fix=fix)


class _Context:
    """What ECS said during one rollout, for the failure message."""

    def __init__(
        self, service: Mapping[str, Any], since: datetime, transient: dict[str, str]
    ) -> None:
        self.events = [
            str(e.get("message", ""))
            for e in reversed(service.get("events", []))  # ECS lists the newest first
            if (_when(e.get("createdAt")) or since) >= since
        ][-EVENTS_SHOWN:]
        self.transient = dict(transient)
        self.task_ids: list[str] = []

    def text(self) -> str:
        parts = []
        if self.events:
            parts.append("\n  service events:\n" + "\n".join(f"    {e}" for e in self.events))
        if self.transient:
            parts.append(
                "\n  tasks ECS restarted:\n"
                + "\n".join(f"    {t}: {why}" for t, why in self.transient.items())
            )
        return "".join(parts)
