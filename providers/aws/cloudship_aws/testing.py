"""pytest fixtures for the AWS target: moto in server mode and an ECR-style registry.

Registered as a pytest plugin (entry point ``pytest11``); boto3 and moto are imported only
when a fixture runs, so installing cloudship without the ``aws``/``testing`` extras costs
nothing here.

- ``cloudship_moto`` (session): a ``ThreadedMotoServer`` on 127.0.0.1 and a free port, started
  with ``MOTO_IAM_LOAD_MANAGED_POLICIES=true`` (so ``AmazonECSTaskExecutionRolePolicy``
  exists) and ``MOTO_ECS_SERVICE_RUNNING=1`` (so a one-task service completes its rollout;
  moto never starts tasks for services).
- ``cloudship_aws_env``: points boto3 at that server for one test (``AWS_ENDPOINT_URL``, fake
  credentials, ``us-east-1``), with moto's state reset and tasks kept RUNNING.
- ``cloudship_ecr_registry`` (session): a real registry accepting exactly the login moto's ECR token
  decodes to (``AWS`` / ``123456789012-auth-token``); moto has no registry endpoint.

Helpers for moto's gaps: ``record_push`` copies a pushed manifest into moto's ECR (as a real
ECR push would leave it), ``start_service_task`` starts a task for a service (moto's services
start none), ``give_public_ip`` attaches an Elastic IP to a task's ENI, and ``EcsScheduler``
plays ECS's service scheduler behind a load balancer (tasks started, their IPs registered as
targets, replaced tasks stopped and deregistered, failing apps stopped for their health checks).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cloudship.testing.registry import ThrowawayRegistry

MOTO_ACCOUNT = "123456789012"
MOTO_REGION = "us-east-1"
#: what moto's ``GetAuthorizationToken`` decodes to (moto/ecr/responses.py)
MOTO_ECR_LOGIN = ("AWS", f"{MOTO_ACCOUNT}-auth-token")

_SERVER_ENV = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "MOTO_ECS_SERVICE_RUNNING": "1"}


@dataclass
class MotoServer:
    """A running moto server; ``endpoint`` is what ``AWS_ENDPOINT_URL`` should be."""

    endpoint: str
    server: Any

    def reset(self) -> None:
        """Forget every resource, then keep ECS tasks RUNNING when described: by default
        moto advances a task one state per ``DescribeTasks`` (RUNNING → … → STOPPED)."""
        import httpx

        # a reset takes seconds on a loaded machine (measured 0.5-6 s at load 9 on 2 cores)
        httpx.post(f"{self.endpoint}/moto-api/reset", timeout=60).raise_for_status()
        httpx.post(
            f"{self.endpoint}/moto-api/state-manager/set-transition",
            json={
                "model_name": "ecs::task",
                "transition": {"progression": "manual", "times": 10**9},
            },
            timeout=10,
        ).raise_for_status()

    def client(self, service: str) -> Any:
        """A boto3 client of this server (fake credentials, ``us-east-1``)."""
        import boto3

        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=MOTO_REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _managed_policies_in_the_aws_partition_only() -> Callable[[], None]:
    """Load AWS's ~1,600 managed policies into the ``aws`` partition's IAM only; return the undo.

    moto 5 looks every request's access key up in the IAM of every partition (aws, aws-cn,
    aws-us-gov, the iso ones: ``moto.iam.models.get_account_id_from``), which creates six IAM
    backends, and with ``MOTO_IAM_LOAD_MANAGED_POLICIES`` each parses and builds every policy:
    measured 0.5 s per test after each reset, and 0.6 s more in the reset itself (which
    rebuilds them before dropping them). Tests run in us-east-1 only, where nothing changes."""
    from moto.iam.models import IAMBackend

    original = IAMBackend._init_aws_policies

    def only_in_aws(self: Any) -> list[Any]:
        return original(self) if self.partition == "aws" else []

    IAMBackend._init_aws_policies = only_in_aws  # type: ignore[method-assign]

    def restore() -> None:
        IAMBackend._init_aws_policies = original  # type: ignore[method-assign]

    return restore


@pytest.fixture(scope="session")
def cloudship_moto() -> Iterator[MotoServer]:
    pytest.importorskip(
        "moto.server", reason="needs moto[server] (pip install 'cloudship[testing]')"
    )
    from moto.server import ThreadedMotoServer

    from cloudship.testing.registry import free_port

    saved = {key: os.environ.get(key) for key in _SERVER_ENV}
    for key, value in _SERVER_ENV.items():
        os.environ.setdefault(key, value)  # moto reads them in this process, per request
    restore = _managed_policies_in_the_aws_partition_only()
    port = free_port()
    # moto binds 0.0.0.0 unless told otherwise: keep the fake account off the network.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield MotoServer(endpoint=f"http://127.0.0.1:{port}", server=server)
    finally:
        server.stop()
        restore()
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@pytest.fixture
def cloudship_aws_env(
    cloudship_moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> MotoServer:
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN"):
        monkeypatch.delenv(key, raising=False)
    # No real config/credentials file may leak into a test.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloudship_moto.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", MOTO_REGION)
    monkeypatch.setenv("AWS_REGION", MOTO_REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    cloudship_moto.reset()
    return cloudship_moto


@pytest.fixture(scope="session")
def cloudship_ecr_registry(
    cloudship_auth_registry: Callable[[dict[str, str]], ThrowawayRegistry],
) -> ThrowawayRegistry:
    user, password = MOTO_ECR_LOGIN
    return cloudship_auth_registry({user: password})


def record_push(ecr: Any, registry: ThrowawayRegistry, repository: str, tag: str) -> str:
    """Copy ``repository:tag`` from ``registry`` into moto's ECR with ``PutImage`` and return
    its digest. moto has no registry endpoint, so a push never reaches it; after this, ECR's
    ``DescribeImages`` knows the image exactly as it would after a real push (moto would
    otherwise invent a digest: the real one is passed as ``imageDigest``). Calling it again
    for the same push is harmless."""
    import httpx

    from cloudship.distribution import MANIFEST_ACCEPT

    user, password = MOTO_ECR_LOGIN
    response = httpx.get(
        f"http://{registry.address}/v2/{repository}/manifests/{tag}",
        headers={"Accept": MANIFEST_ACCEPT},
        auth=(user, password),
        timeout=10,
    )
    response.raise_for_status()
    digest = response.headers["Docker-Content-Digest"]
    # ECR refuses a second PutImage of a tag it holds with this digest; recording the same
    # push twice is no error for a test helper (idempotent, as a re-push is).
    with contextlib.suppress(ecr.exceptions.ImageAlreadyExistsException):
        ecr.put_image(
            repositoryName=repository,
            imageManifest=response.text,
            imageManifestMediaType=response.headers["Content-Type"],
            imageTag=tag,
            imageDigest=digest,
        )
    return digest


def give_public_ip(ecs: Any, ec2: Any, cluster: str, task_arn: str) -> str:
    """Attach an Elastic IP to the task's ENI (moto ignores ``assignPublicIp``) and return it."""
    task = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"][0]
    details = {
        d["name"]: d["value"]
        for a in task["attachments"]
        if a["type"] == "ElasticNetworkInterface"
        for d in a["details"]
    }
    allocation = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(
        AllocationId=allocation["AllocationId"], NetworkInterfaceId=details["networkInterfaceId"]
    )
    return str(allocation["PublicIp"])


def start_service_task(cluster: str, service: str) -> str:
    """Start one task of ``service``'s current task definition, in its network, the way ECS's
    scheduler would, and return the task ARN.

    moto's services never start tasks, and its ``RunTask`` cannot size a Fargate task whose
    container sets no memory of its own (valid on AWS), so the task is created in the
    in-process moto backend directly: this works with ``cloudship_moto`` (a thread of the test
    process), not with a moto server in another process.
    """
    from moto.ecs.models import Task, ecs_backends

    backend = ecs_backends[MOTO_ACCOUNT][MOTO_REGION]
    (found,), _ = backend.describe_services(cluster, [service])
    assert found.task_definition, f"service {service} has no task definition"
    deployments = found.deployments or [{}]
    task = Task(
        cluster=backend.clusters[cluster],
        task_definition=backend.describe_task_definition(found.task_definition),
        container_instance_arn=None,
        resource_requirements=None,
        backend=backend,
        group=f"service:{service}",
        launch_type="FARGATE",
        started_by=str(deployments[0].get("id", "")),
        networking_configuration=found.network_configuration,
    )
    backend.tasks.setdefault(cluster, {})[task.task_arn] = task
    return str(task.task_arn)


@dataclass
class EcsScheduler:
    """ECS's service scheduler for moto's in-process backend, in a background thread.

    What it models (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-load-balancing.html,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_services.html):

    - each ACTIVE service gets ``desiredCount`` RUNNING tasks of its current task definition,
      in its network;
    - with ``loadBalancers``, the task's private IP is registered in the target group only
      after ``healthy_after`` seconds (a new target is ``initial`` until it has passed the
      group's healthy-threshold checks; moto reports any registered target ``healthy``, so
      "not registered yet" stands in for ``initial``);
    - tasks of a replaced task definition are deregistered and stopped (``Scaling activity
      initiated by (deployment …)``);
    - a service in ``failing`` (or a task of an image in ``failing_images``) never becomes
      healthy: its task is stopped with ECS's reason
      ``Task failed ELB health checks in (target-group …)``, as ECS does once the target is
      ``unhealthy`` after the grace period (stopped-task-errors.html);
    - deployments (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html):
      an ``UpdateService`` that changes the task definition (or forces a new deployment) starts
      a new ``PRIMARY`` deployment, ``IN_PROGRESS``, and the one it replaces turns ``ACTIVE``
      — in ``UpdateService``'s own answer too; the PRIMARY turns ``COMPLETED`` once its tasks
      run (and are registered), and replaced deployments leave the list then. moto keeps the
      first deployment for ever and reports it ``COMPLETED`` at once.

    moto's services otherwise start nothing, so a health gate on target health could never
    pass on moto without it. Works with ``cloudship_moto`` (a thread of the test process).
    """

    cluster: str = "cloudship"
    healthy_after: float = 0.2
    failing: set[str] = field(default_factory=set)
    #: images (``repo@sha256:…``) whose tasks fail their health checks, on any service
    failing_images: set[str] = field(default_factory=set)
    interval: float = 0.02
    started: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _pending: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    error: Exception | None = None

    def __enter__(self) -> EcsScheduler:
        self._model_deployments()
        self._thread = threading.Thread(target=self._run, name="ecs-scheduler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.error is not None:
            raise AssertionError(f"EcsScheduler failed: {self.error!r}") from self.error

    def _model_deployments(self) -> None:
        """Wrap moto's ``update_service`` on this test's backend (reset with it)."""
        from moto.ecs.models import ecs_backends

        backend = ecs_backends[MOTO_ACCOUNT][MOTO_REGION]
        original = backend.update_service
        lock = self._lock

        def update_service(properties: dict[str, Any]) -> Any:
            name = str(properties.get("service", "")).split("/")[-1]
            cluster = properties.get("cluster", "default")
            forced = bool(properties.get("force_new_deployment"))
            with lock:
                before = backend._get_service(cluster, name).task_definition
                service = original(properties)
                if service.deployments and (service.task_definition != before or forced):
                    for deployment in service.deployments:
                        deployment["status"] = "ACTIVE"
                    now = datetime.now(UTC)
                    primary = {
                        **service.deployments[0],
                        "id": f"ecs-svc/{uuid.uuid4().int % 10**18}",
                        "status": "PRIMARY",
                        "taskDefinition": service.task_definition,
                        "desiredCount": service.desired_count,
                        "rolloutState": "IN_PROGRESS",
                        "rolloutStateReason": "ECS deployment in progress.",
                        "createdAt": now,
                        "updatedAt": now,
                    }
                    service.deployments = [primary, *service.deployments]
                return service

        backend.update_service = update_service  # type: ignore[method-assign,assignment]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.step()
            except RuntimeError:  # a backend dict changed size under us: look again
                continue
            except Exception as exc:  # surfaced by __exit__: a dead scheduler must fail the test
                self.error = exc
                return

    def step(self) -> None:
        with self._lock:
            self._step()

    def _step(self) -> None:
        from moto.ecs.models import ecs_backends
        from moto.elbv2.models import elbv2_backends

        ecs = ecs_backends[MOTO_ACCOUNT][MOTO_REGION]
        elbv2 = elbv2_backends[MOTO_ACCOUNT][MOTO_REGION]
        cluster = ecs.clusters.get(self.cluster)
        if cluster is None:
            return
        services = {
            s.name: s for s in list(ecs.services.values()) if s.cluster_name == self.cluster
        }
        tasks = list(ecs.tasks.get(self.cluster, {}).values())
        for name, service in services.items():
            mine = [
                t for t in tasks if t.group == f"service:{name}" and t.desired_status == "RUNNING"
            ]
            groups = [lb["targetGroupArn"] for lb in service.load_balancers or []]
            port = next((lb["containerPort"] for lb in service.load_balancers or []), 0)
            for task in mine:
                if (
                    task.task_definition_arn != service.task_definition
                    or service.status != "ACTIVE"
                ):
                    self._stop_task(
                        elbv2,
                        task,
                        groups,
                        port,
                        f"Scaling activity initiated by (deployment {name})",
                    )
            current = [t for t in mine if t.task_definition_arn == service.task_definition]
            if service.status != "ACTIVE" or service.desired_count == 0:
                continue
            for _ in range(service.desired_count - len(current)):
                arn = start_service_task(self.cluster, name)
                self.started.append(arn)
                self._pending[arn] = time.monotonic() + self.healthy_after
            for task in current:
                due = self._pending.get(task.task_arn)
                if due is None or time.monotonic() < due:
                    continue
                del self._pending[task.task_arn]
                image = (
                    ecs.describe_task_definition(task.task_definition_arn)
                    .container_definitions[0]
                    .get("image")
                )
                if name in self.failing or image in self.failing_images:
                    group = groups[0] if groups else ""
                    reason = f"Task failed ELB health checks in (target-group {group})"
                    self._stop_task(elbv2, task, groups, port, reason)
                    continue
                for group in groups:
                    elbv2.register_targets(group, [{"Id": _task_ip(task), "Port": port}])
            ready = [t for t in current if t.task_arn not in self._pending]
            primary = service.deployments[0] if service.deployments else {}
            if (
                primary.get("status") == "PRIMARY"
                and primary.get("rolloutState") == "IN_PROGRESS"
                and len(ready) >= service.desired_count
            ):
                primary["rolloutState"] = "COMPLETED"
                primary["rolloutStateReason"] = f"ECS deployment {primary.get('id')} completed."
                service.deployments = [primary]

    @staticmethod
    def _stop_task(elbv2: Any, task: Any, groups: list[str], port: int, reason: str) -> None:
        ip = _task_ip(task)
        for group in groups:
            found = elbv2.target_groups.get(group)  # destroy may have deleted it already
            if found is not None and ip in found.targets:  # registered once it was healthy
                elbv2.deregister_targets(group, [{"Id": ip, "Port": port}])
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        task.stopped_reason = reason


def _task_ip(task: Any) -> str:
    return str(
        next(
            d["value"]
            for a in task.attachments
            for d in a["details"]
            if d["name"] == "privateIPv4Address"
        )
    )


@pytest.fixture
def cloudship_ecs_scheduler(cloudship_aws_env: MotoServer) -> Iterator[EcsScheduler]:
    """ECS's scheduler on moto for one test (see ``EcsScheduler``)."""
    with EcsScheduler() as scheduler:
        yield scheduler
