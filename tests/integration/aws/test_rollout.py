"""Rollout sequences moto cannot produce, on the runtime's real code path.

IAM, EC2 and CloudWatch Logs are moto (real calls); only the runtime's own ECS client is wrapped
in a botocore ``Stubber`` that answers with what ECS says during a rollout. Every ECS call the
runtime makes must be scripted here, so an extra or a missing call fails the test.
"""

from __future__ import annotations

import builtins
import hashlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from cloudship.errors import ConcurrentShipError, HealthCheckFailed, ShipTimeoutError
from cloudship.events import DeployPhase, Event
from cloudship.images import ImageRef
from cloudship.runtime import ServiceSpec
from cloudship_aws import AwsClients, AwsSettings, FargateRuntime
from cloudship_aws.testing import MOTO_ACCOUNT, MotoServer

CLUSTER = "cloudship"
FAILED_REASON = "ECS deployment circuit breaker: tasks failed to start."


class EcsScript:
    """What ECS answers, queued on the runtime's ECS client."""

    def __init__(self, stub: Stubber, name: str) -> None:
        self.stub = stub
        self.name = name

    def arn(self, revision: int) -> str:
        return f"arn:aws:ecs:us-east-1:{MOTO_ACCOUNT}:task-definition/{self.name}:{revision}"

    def service(self, serving: int, *deployments: dict[str, Any]) -> dict[str, Any]:
        return {
            "serviceName": self.name,
            "status": "ACTIVE",
            "desiredCount": 1,
            "taskDefinition": self.arn(serving),
            "deployments": list(deployments),
        }

    def deployment(self, revision: int, status: str, rollout: str, why: str = "") -> dict[str, Any]:
        return {
            "id": f"ecs-svc/{revision}{status}",
            "status": status,
            "taskDefinition": self.arn(revision),
            "rolloutState": rollout,
            "rolloutStateReason": why or f"deployment {rollout.lower()}",
        }

    def describe(self, service: dict[str, Any] | None) -> None:
        found = {"services": [service]} if service else {"services": [], "failures": []}
        self.stub.add_response(
            "describe_services", found, {"cluster": CLUSTER, "services": [self.name]}
        )

    def cluster_active(self) -> None:
        self.stub.add_response(
            "describe_clusters",
            {"clusters": [{"clusterName": CLUSTER, "status": "ACTIVE"}]},
            {"clusters": [CLUSTER]},
        )

    def register(self, revision: int) -> None:
        # The request's content is covered by test_taskdef and the moto ship tests.
        self.stub.add_response(
            "register_task_definition",
            {"taskDefinition": {"taskDefinitionArn": self.arn(revision)}},
        )

    def serving(self) -> dict[str, Any]:
        """r1, completed: the service as a ship finds it before it deploys r2."""
        return self.service(1, self.deployment(1, "PRIMARY", "COMPLETED"))

    def owner(self, revision: int, ship: str) -> None:
        """The ship tag of ``revision``, read to name a concurrent ship."""
        self.stub.add_response(
            "list_tags_for_resource",
            {"tags": [{"key": "cloudship:ship", "value": ship}]},
            {"resourceArn": self.arn(revision)},
        )

    def deployment_of(self, revision: int, image: str = "x") -> None:
        """What the Deployment is built from: the task definition's image and, without a
        load balancer, a running task's address (none here)."""
        self.stub.add_response(
            "describe_task_definition",
            {
                "taskDefinition": {
                    "taskDefinitionArn": self.arn(revision),
                    "containerDefinitions": [{"name": "app", "image": image}],
                }
            },
            {"taskDefinition": self.arn(revision)},
        )
        self.stub.add_response(
            "list_tasks",
            {"taskArns": []},
            {"cluster": CLUSTER, "serviceName": self.name, "desiredStatus": "RUNNING"},
        )

    def start_of_deploy(
        self,
        *,
        existing: bool,
        reread: dict[str, Any] | None = None,
        update_answer: dict[str, Any] | None = None,
        **balancing: Any,
    ) -> None:
        """Cluster check, current service, its fingerprint, registration, the re-read before
        the switch (``reread``: what it finds; by default the service as first read), and
        create/update (``update_answer``: what UpdateService answers)."""
        self.cluster_active()
        if existing:
            self.describe(self.serving())
            self.stub.add_response(
                "describe_task_definition",
                {
                    "taskDefinition": {"taskDefinitionArn": self.arn(1)},
                    "tags": [{"key": "cloudship:fingerprint", "value": "an-older-spec"}],
                },
                {"taskDefinition": self.arn(1), "include": ["TAGS"]},
            )
        else:
            self.describe(None)
        self.register(2)
        self.describe(reread if reread is not None else self.serving() if existing else None)
        if reread is not None:
            return  # another ship got there first: no switch
        circuit_breaker = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
        if existing:
            self.stub.add_response(
                "update_service",
                {"service": update_answer or self.service(2)},
                {
                    "cluster": CLUSTER,
                    "service": self.name,
                    "taskDefinition": self.arn(2),
                    "desiredCount": 1,
                    "networkConfiguration": ANY,
                    "deploymentConfiguration": circuit_breaker,
                    "forceNewDeployment": False,
                    **balancing,
                },
            )
        else:
            self.stub.add_response(
                "create_service",
                {"service": self.service(2)},
                {
                    "cluster": CLUSTER,
                    "serviceName": self.name,
                    "taskDefinition": self.arn(2),
                    "desiredCount": 1,
                    "launchType": "FARGATE",
                    "networkConfiguration": ANY,
                    "deploymentConfiguration": circuit_breaker,
                    "deploymentController": {"type": "ECS"},
                    "propagateTags": "TASK_DEFINITION",
                    "tags": ANY,
                },
            )

    def stopped_task(
        self, task_id: str, revision: int, reason: str, *, age: timedelta | None = None, **more: Any
    ) -> dict[str, Any]:
        """A stopped task of ``revision``, created ``age`` ago (default: a minute after the
        deploy began, as ECS's clock may say)."""
        created = (
            datetime.now(UTC) - age if age is not None else datetime.now(UTC) + timedelta(minutes=1)
        )
        return {
            "taskArn": f"arn:aws:ecs:us-east-1:{MOTO_ACCOUNT}:task/{CLUSTER}/{task_id}",
            "taskDefinitionArn": self.arn(revision),
            "lastStatus": "STOPPED",
            "createdAt": created,
            "stoppedReason": reason,
            **more,
        }

    def stopped_tasks(self, *tasks: dict[str, Any]) -> None:
        arns = [t["taskArn"] for t in tasks]
        self.stub.add_response(
            "list_tasks",
            {"taskArns": arns},
            {"cluster": CLUSTER, "serviceName": self.name, "desiredStatus": "STOPPED"},
        )
        if tasks:
            self.stub.add_response(
                "describe_tasks", {"tasks": list(tasks)}, {"cluster": CLUSTER, "tasks": arns}
            )

    def gate_failed(self, revision: int) -> None:
        """cloudship tags the revision whose deploy failed its gate."""
        self.stub.add_response(
            "tag_resource",
            {},
            {
                "resourceArn": self.arn(revision),
                "tags": [{"key": "cloudship:gate", "value": "failed"}],
            },
        )

    def rollback_to(self, revision: int) -> None:
        self.stub.add_response(
            "update_service",
            {"service": self.service(revision)},
            {"cluster": CLUSTER, "service": self.name, "taskDefinition": self.arn(revision)},
        )


@pytest.fixture
def runtime(cloudship_aws_env: MotoServer) -> FargateRuntime:
    settings = AwsSettings(poll_interval=0.01)
    return FargateRuntime(settings, AwsClients(settings))


def private(name: str) -> ServiceSpec:
    """The rollout rules without a load balancer (``public=False``); the load-balanced gate
    has its own tests below."""
    return ServiceSpec(name=name, port=8000, public=False)


@pytest.fixture
def name() -> str:
    return f"roll-{uuid.uuid4().hex[:8]}"


def image(name: str) -> ImageRef:
    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return ImageRef.parse(f"{MOTO_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{name}@{digest}")


def app_log(cloudship_aws_env: MotoServer, name: str, stream: str, lines: list[str]) -> None:
    """Container output as awslogs would have written it (moto is the real Logs API here)."""
    logs = cloudship_aws_env.client("logs")
    group = f"/cloudship/{name}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )


def test_in_progress_then_completed(runtime: FargateRuntime, name: str) -> None:
    events: list[Event] = []
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.start_of_deploy(existing=True)
        ecs.describe(
            ecs.service(
                2,
                ecs.deployment(2, "PRIMARY", "IN_PROGRESS"),
                ecs.deployment(1, "ACTIVE", "COMPLETED"),
            )
        )
        ecs.stopped_tasks()
        ecs.describe(ecs.service(2, ecs.deployment(2, "PRIMARY", "COMPLETED")))
        ecs.deployment_of(2, image=str(image(name)))
        deployment = runtime.deploy(
            private(name), image(name), None, timeout=30, on_event=events.append
        )
        stub.assert_no_pending_responses()
    assert deployment.changed
    assert (deployment.revision, deployment.previous) == ("r2", "r1")
    assert deployment.image == str(image(name))
    phases = [e.phase for e in events if isinstance(e, DeployPhase)]
    assert phases == ["register", "start", "rollout", "done"]


def test_circuit_breaker_rollback_is_reported_as_failure(
    runtime: FargateRuntime, name: str, cloudship_aws_env: MotoServer
) -> None:
    """ECS rolled back on its own: the service is steady again, on r1. That is a failure."""
    app_log(
        cloudship_aws_env,
        name,
        "ecs/app/t-old",
        ["Traceback (most recent call last):", "KeyError: DB"],
    )
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.start_of_deploy(existing=True)
        ecs.describe(
            ecs.service(
                1,
                ecs.deployment(1, "PRIMARY", "COMPLETED"),
                ecs.deployment(2, "ACTIVE", "FAILED", FAILED_REASON),
            )
        )
        ecs.gate_failed(2)
        with pytest.raises(HealthCheckFailed) as caught:
            runtime.deploy(private(name), image(name), None, timeout=30)
        stub.assert_no_pending_responses()  # and no rollback call of its own: ECS did it
    failure = caught.value
    assert failure.rolled_back_to == "r1"
    assert FAILED_REASON in str(failure)
    assert failure.log_tail == ["Traceback (most recent call last):", "KeyError: DB"]


def test_stopped_task_fails_fast_and_rolls_back(
    runtime: FargateRuntime, name: str, cloudship_aws_env: MotoServer
) -> None:
    task_id = uuid.uuid4().hex
    app_log(cloudship_aws_env, name, f"ecs/app/{task_id}", ["starting", "cannot bind port 8000"])
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.start_of_deploy(existing=True)
        ecs.describe(ecs.service(2, ecs.deployment(2, "PRIMARY", "IN_PROGRESS")))
        ecs.stopped_tasks(
            ecs.stopped_task(
                task_id,
                2,
                "Essential container in task exited",
                containers=[{"name": "app", "exitCode": 1}],
            )
        )
        ecs.gate_failed(2)
        ecs.rollback_to(1)
        with pytest.raises(HealthCheckFailed) as caught:
            runtime.deploy(private(name), image(name), None, timeout=30)
        stub.assert_no_pending_responses()
    failure = caught.value
    assert failure.rolled_back_to == "r1"
    assert "Essential container in task exited, exit code 1" in str(failure)
    assert failure.log_tail == ["starting", "cannot bind port 8000"]


def test_timeout_rolls_back_and_raises_timeout(runtime: FargateRuntime, name: str) -> None:
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.start_of_deploy(existing=True)
        ecs.describe(ecs.service(2, ecs.deployment(2, "PRIMARY", "IN_PROGRESS")))
        ecs.stopped_tasks()
        ecs.gate_failed(2)
        ecs.rollback_to(1)
        with pytest.raises(ShipTimeoutError) as caught:
            runtime.deploy(private(name), image(name), None, timeout=0)
        stub.assert_no_pending_responses()
    assert isinstance(caught.value, builtins.TimeoutError)
    assert "did not complete within 0 s" in str(caught.value)
    assert "rolled back: r1 serves again" in str(caught.value)


def test_first_deploy_failure_has_nothing_to_roll_back_to(
    runtime: FargateRuntime, name: str
) -> None:
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.start_of_deploy(existing=False)
        ecs.describe(ecs.service(2, ecs.deployment(2, "PRIMARY", "FAILED", FAILED_REASON)))
        ecs.gate_failed(2)
        with pytest.raises(HealthCheckFailed) as caught:
            runtime.deploy(private(name), image(name), None, timeout=30)
        stub.assert_no_pending_responses()
    assert caught.value.rolled_back_to is None
    assert "nothing to roll back to" in str(caught.value)


def test_rollback_ignores_tasks_stopped_before_it(runtime: FargateRuntime, name: str) -> None:
    """r1's tasks were stopped when r2 replaced it; rolling back to r1 must not trip on them."""
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.describe(ecs.service(2, ecs.deployment(2, "PRIMARY", "COMPLETED")))
        stub.add_response(
            "list_task_definitions",
            {"taskDefinitionArns": [ecs.arn(1), ecs.arn(2)]},
            {"familyPrefix": name, "status": "ACTIVE", "sort": "DESC"},
        )
        stub.add_response("list_tags_for_resource", {"tags": []}, {"resourceArn": ecs.arn(1)})
        stub.add_response(
            "describe_task_definition",
            {
                "taskDefinition": {
                    "taskDefinitionArn": ecs.arn(1),
                    "containerDefinitions": [
                        {"name": "app", "image": str(image(name)), "portMappings": []}
                    ],
                }
            },
            {"taskDefinition": ecs.arn(1)},
        )
        ecs.rollback_to(1)
        ecs.describe(ecs.service(1, ecs.deployment(1, "PRIMARY", "IN_PROGRESS")))
        ecs.stopped_tasks(
            ecs.stopped_task(
                "old",
                1,
                "Scaling activity initiated by (deployment ecs-svc/2)",
                age=timedelta(hours=2),
            )
        )
        ecs.describe(ecs.service(1, ecs.deployment(1, "PRIMARY", "COMPLETED")))
        stub.add_response(
            "list_tasks",
            {"taskArns": []},
            {"cluster": CLUSTER, "serviceName": name, "desiredStatus": "RUNNING"},
        )
        back = runtime.rollback(name, timeout=30)
        stub.assert_no_pending_responses()
    assert back.changed and (back.revision, back.previous) == ("r1", "r2")


def test_fresh_account_creates_the_service_linked_role_and_retries_the_race(
    runtime: FargateRuntime, name: str, cloudship_aws_env: MotoServer
) -> None:
    """CreateCluster racing ECS's service-linked role fails with ECS's documented message
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html);
    cloudship creates the role on moto's IAM first and retries the cluster."""
    race = (
        "Unable to assume the service linked role. "
        "Please verify that the ECS service linked role exists."
    )
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        stub.add_response("describe_clusters", {"clusters": []}, {"clusters": [CLUSTER]})
        stub.add_client_error("create_cluster", "InvalidParameterException", race)
        stub.add_response("create_cluster", {"cluster": {"clusterName": CLUSTER}})
        ecs.describe(None)
        ecs.register(1)
        ecs.describe(None)  # the re-read before the switch
        stub.add_client_error("create_service", "InvalidParameterException", race)
        stub.add_response("create_service", {"service": ecs.service(1)})
        ecs.describe(ecs.service(1, ecs.deployment(1, "PRIMARY", "COMPLETED")))
        ecs.deployment_of(1)
        deployment = runtime.deploy(private(name), image(name), None, timeout=30)
        stub.assert_no_pending_responses()
    assert deployment.revision == "r1"
    roles = cloudship_aws_env.client("iam").list_roles(
        PathPrefix="/aws-service-role/ecs.amazonaws.com/"
    )
    assert len(roles["Roles"]) == 1


def test_a_transient_start_failure_is_tolerated(runtime: FargateRuntime, name: str) -> None:
    """IAM propagation: the first task cannot read its secrets; ECS starts another, which
    runs (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html)."""
    events: list[Event] = []
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.start_of_deploy(existing=True)
        ecs.describe(ecs.service(2, ecs.deployment(2, "PRIMARY", "IN_PROGRESS")))
        ecs.stopped_tasks(
            ecs.stopped_task(
                "t1",
                2,
                "ResourceInitializationError: unable to pull secrets or registry auth: "
                "execution resource retrieval failed: AccessDeniedException",
                stopCode="TaskFailedToStart",
            )
        )
        ecs.describe(ecs.service(2, ecs.deployment(2, "PRIMARY", "COMPLETED")))
        ecs.deployment_of(2)
        deployment = runtime.deploy(
            private(name), image(name), None, timeout=30, on_event=events.append
        )
        stub.assert_no_pending_responses()
    assert deployment.revision == "r2"
    retries = [e.detail for e in events if isinstance(e, DeployPhase) and e.phase == "retry"]
    assert len(retries) == 1 and "ResourceInitializationError" in retries[0]


def test_failure_says_what_ecs_said(runtime: FargateRuntime, name: str) -> None:
    """Service events since the deploy began and the restarted tasks' reasons are in the error
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages.html)."""
    now = datetime.now(UTC)
    placement = (
        f"(service {name}) was unable to place a task because no container instance met all "
        "of its requirements."
    )
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.start_of_deploy(existing=False)
        ecs.describe(ecs.service(2, ecs.deployment(2, "PRIMARY", "IN_PROGRESS")))
        ecs.stopped_tasks(
            ecs.stopped_task(
                "t9",
                2,
                "CannotPullContainerError: pull access denied",
                stopCode="TaskFailedToStart",
            )
        )
        failed = ecs.service(2, ecs.deployment(2, "PRIMARY", "FAILED", FAILED_REASON))
        failed["events"] = [
            {"id": "2", "createdAt": now + timedelta(minutes=1), "message": placement},
            {"id": "1", "createdAt": now - timedelta(hours=1), "message": "an old event"},
        ]
        ecs.describe(failed)
        ecs.gate_failed(2)
        with pytest.raises(HealthCheckFailed) as caught:
            runtime.deploy(private(name), image(name), None, timeout=30)
        stub.assert_no_pending_responses()
    text = str(caught.value)
    assert FAILED_REASON in text and placement in text and "an old event" not in text
    assert "t9: CannotPullContainerError: pull access denied" in text


def test_a_draining_service_is_waited_for_then_created(runtime: FargateRuntime, name: str) -> None:
    """destroy then ship: the old service is DRAINING until its tasks stop, and ECS refuses the
    name until it is INACTIVE
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html)."""
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.cluster_active()
        draining = {**ecs.service(1), "status": "DRAINING"}
        ecs.describe(draining)  # deploy's look at the current service
        ecs.describe(draining)  # still draining
        ecs.describe({**ecs.service(1), "status": "INACTIVE"})
        ecs.register(2)
        ecs.describe({**ecs.service(1), "status": "INACTIVE"})  # the re-read: still gone
        stub.add_response("create_service", {"service": ecs.service(2)})
        ecs.describe(ecs.service(2, ecs.deployment(2, "PRIMARY", "COMPLETED")))
        ecs.deployment_of(2)
        deployment = runtime.deploy(private(name), image(name), None, timeout=30)
        stub.assert_no_pending_responses()
    assert deployment.revision == "r2" and deployment.previous is None


def test_a_service_draining_past_the_timeout_is_a_clear_timeout(
    runtime: FargateRuntime, name: str
) -> None:
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.cluster_active()
        draining = {**ecs.service(1), "status": "DRAINING"}
        ecs.describe(draining)
        ecs.describe(draining)
        with pytest.raises(ShipTimeoutError, match="still DRAINING") as caught:
            runtime.deploy(private(name), image(name), None, timeout=0)
        stub.assert_no_pending_responses()
    assert caught.value.fix and "ship again" in caught.value.fix


def test_behind_the_alb_the_gate_waits_for_healthy_targets(
    runtime: FargateRuntime, name: str, cloudship_aws_env: MotoServer
) -> None:
    """ECS's COMPLETED is not enough: the new task's IP must be a healthy target. ECS registers
    a task's private IP in the target group once it runs
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-load-balancing.html);
    here that happens on the second DescribeTasks, in moto's real elbv2 (ALB, listener, rule
    and target group were created there by the deploy)."""
    ip = "172.31.5.9"
    task = {
        "taskArn": f"arn:aws:ecs:us-east-1:{MOTO_ACCOUNT}:task/{CLUSTER}/t1",
        "lastStatus": "RUNNING",
        "attachments": [
            {
                "type": "ElasticNetworkInterface",
                "details": [{"name": "privateIPv4Address", "value": ip}],
            }
        ],
    }
    seen: list[int] = []
    elbv2 = cloudship_aws_env.client("elbv2")

    def ecs_registers_target(**_: Any) -> None:
        seen.append(1)
        if len(seen) == 2:
            (group,) = elbv2.describe_target_groups()["TargetGroups"]
            elbv2.register_targets(
                TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": ip, "Port": 8000}]
            )

    runtime.clients.ecs.meta.events.register("after-call.ecs.DescribeTasks", ecs_registers_target)
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.start_of_deploy(existing=True, loadBalancers=ANY, healthCheckGracePeriodSeconds=30)
        task["taskDefinitionArn"] = ecs.arn(2)
        completed = ecs.service(2, ecs.deployment(2, "PRIMARY", "COMPLETED"))
        running = {"cluster": CLUSTER, "serviceName": name, "desiredStatus": "RUNNING"}
        listed = {"taskArns": [task["taskArn"]]}
        described = ({"tasks": [task]}, {"cluster": CLUSTER, "tasks": [task["taskArn"]]})
        # 1: COMPLETED, but no task running yet
        ecs.describe(completed)
        stub.add_response("list_tasks", {"taskArns": []}, running)
        ecs.stopped_tasks()
        # 2: the task runs; its IP is not a target yet (moto: "unavailable")
        ecs.describe(completed)
        stub.add_response("list_tasks", listed, running)
        stub.add_response("describe_tasks", *described)
        ecs.stopped_tasks()
        # 3: ECS has registered it and the ALB finds it healthy: done
        ecs.describe(completed)
        stub.add_response("list_tasks", listed, running)
        stub.add_response("describe_tasks", *described)
        stub.add_response(
            "describe_task_definition",
            {"taskDefinition": {"containerDefinitions": [{"name": "app", "image": "x"}]}},
            {"taskDefinition": ecs.arn(2)},
        )
        deployment = runtime.deploy(
            ServiceSpec(name=name, port=8000), image(name), None, timeout=30
        )
        stub.assert_no_pending_responses()
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    assert deployment.url == f"http://{balancer['DNSName']}"
    assert len(seen) == 2


# -- two ships of one service (concurrency.py) ---------------------------------------------
# ECS has no conditional UpdateService; each window between a ship's read and its switch is
# forced here by what ECS answers, in order.

OTHER_SHIP = "ship 0b0b0b0b pid 4242 on ci-2 at 2026-01-01T00:00:00Z"


def test_a_ship_that_finds_the_service_switched_since_its_start_does_not_switch(
    runtime: FargateRuntime, name: str
) -> None:
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        # another ship registered r3 and switched to it while this one registered r2
        ecs.start_of_deploy(
            existing=True, reread=ecs.service(3, ecs.deployment(3, "PRIMARY", "IN_PROGRESS"))
        )
        ecs.owner(3, OTHER_SHIP)
        with pytest.raises(ConcurrentShipError) as caught:
            runtime.deploy(private(name), image(name), None, timeout=30)
        stub.assert_no_pending_responses()  # no UpdateService, no rollback, no tag
    assert caught.value.holder == OTHER_SHIP
    assert OTHER_SHIP in str(caught.value) and "since this ship read it" in str(caught.value)


def test_a_switch_landing_after_another_ships_is_undone(runtime: FargateRuntime, name: str) -> None:
    """The other ship switched between this one's re-read and its UpdateService: ECS's answer
    lists that ship's deployment (r3), not there at the start. r3 is put back, so its update
    is not lost, and this ship raises."""
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.start_of_deploy(
            existing=True,
            update_answer=ecs.service(
                2,
                ecs.deployment(2, "PRIMARY", "IN_PROGRESS"),
                ecs.deployment(3, "ACTIVE", "IN_PROGRESS"),
            ),
        )
        ecs.rollback_to(3)
        ecs.owner(3, OTHER_SHIP)
        with pytest.raises(ConcurrentShipError) as caught:
            runtime.deploy(private(name), image(name), None, timeout=30)
        stub.assert_no_pending_responses()
    assert caught.value.holder == OTHER_SHIP
    assert "r3 serves again" in str(caught.value)


def test_another_ships_switch_during_the_rollout_is_not_a_health_failure(
    runtime: FargateRuntime, name: str
) -> None:
    """PRIMARY is r3 while our r2 is still rolling out (not FAILED): another ship's, so
    ConcurrentShipError; no rollback, and r2 is not marked failed."""
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.start_of_deploy(existing=True)
        ecs.describe(
            ecs.service(
                3,
                ecs.deployment(3, "PRIMARY", "IN_PROGRESS"),
                ecs.deployment(2, "ACTIVE", "IN_PROGRESS"),
            )
        )
        ecs.owner(3, OTHER_SHIP)
        with pytest.raises(ConcurrentShipError) as caught:
            runtime.deploy(private(name), image(name), None, timeout=30)
        stub.assert_no_pending_responses()
    assert not isinstance(caught.value, HealthCheckFailed)
    assert caught.value.holder == OTHER_SHIP and "during the rollout of r2" in str(caught.value)


def test_two_ships_creating_one_service_the_second_is_refused(
    runtime: FargateRuntime, name: str
) -> None:
    """ECS answers a CreateService whose name exists with other parameters "Creation of
    service was not idempotent" (API_CreateService.html)."""
    with Stubber(runtime.clients.ecs) as stub:
        ecs = EcsScript(stub, name)
        ecs.cluster_active()
        ecs.describe(None)
        ecs.register(2)
        ecs.describe(None)
        stub.add_client_error(
            "create_service",
            "InvalidParameterException",
            "Creation of service was not idempotent.",
        )
        ecs.describe(ecs.service(1, ecs.deployment(1, "PRIMARY", "IN_PROGRESS")))
        ecs.owner(1, OTHER_SHIP)
        with pytest.raises(ConcurrentShipError) as caught:
            runtime.deploy(private(name), image(name), None, timeout=30)
        stub.assert_no_pending_responses()
    assert caught.value.holder == OTHER_SHIP and "by creating it first" in str(caught.value)
