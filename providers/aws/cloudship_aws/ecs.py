"""Amazon ECS on Fargate as a cloudship ``Runtime``.

A deploy registers a task definition (unless the serving one already has the same content),
creates or updates the service with the deployment circuit breaker on, and waits for the
rollout (``rollout.py``). A revision is a task definition revision: ``r7`` is ``family:7``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from cloudship.errors import (
    ConfigError,
    DeployError,
    ServiceNotFoundError,
)
from cloudship.events import DeployPhase, EventSink, ignore
from cloudship.image_needs import ImageNeed, shell_needs
from cloudship.images import ImageRef
from cloudship.registry import RegistryAuth
from cloudship.revisions import choose_rollback
from cloudship.runtime import Deployment, Plan, Revision, Runtime, ServiceSpec, ServiceStatus
from cloudship_aws import autoscaling, concurrency, iam, network, pullsecret, taskdef
from cloudship_aws.autoscaling import Autoscaling
from cloudship_aws.cloudwatch import log_tail
from cloudship_aws.dns import Dns
from cloudship_aws.errors import aws_errors, error_code
from cloudship_aws.fargate import task_size
from cloudship_aws.loadbalancer import HEALTH_CHECK, LoadBalancers
from cloudship_aws.propagation import eventually
from cloudship_aws.rollout import GATE_TAG, Rollout, describe_service
from cloudship_aws.session import AwsClients
from cloudship_aws.settings import AwsSettings
from cloudship_aws.taskdef import revision_id
from cloudship_aws.urls import ServiceUrls

if TYPE_CHECKING:
    from mypy_boto3_ecs.type_defs import ServiceTypeDef

PLATFORMS = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}
LOG_TAIL = 20
HEALTH_GRACE_SECONDS = 30
#: what a Fargate task takes from placement to a running container (ENI, image pull, start):
#: an allowance, not a documented figure; tasks of large images take longer
START_SECONDS = 60
CIRCUIT_BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}


def _failed_revisions(service: Mapping[str, Any]) -> set[str]:
    """Task definitions whose deployment ECS marked FAILED (circuit breaker)."""
    return {
        str(d.get("taskDefinition"))
        for d in service.get("deployments", [])
        if d.get("rolloutState") == "FAILED"
    }


class FargateRuntime(Runtime):
    """Services on ECS Fargate in one cluster; a revision is a task definition revision."""

    kind: ClassVar[str] = "ecs"
    platforms: ClassVar[frozenset[str]] = frozenset(PLATFORMS.values())

    def __init__(self, settings: AwsSettings, clients: AwsClients) -> None:
        self._settings = settings
        self._clients = clients
        self._rollout = Rollout(settings, clients)
        self._urls = ServiceUrls(settings, clients)
        self._balancers = LoadBalancers(settings, clients)
        self._autoscaling = Autoscaling(settings, clients)
        self._dns = Dns(settings, clients)

    @property
    def clients(self) -> AwsClients:
        """The boto3 clients this runtime calls (shared with its registry)."""
        return self._clients

    @property
    def settings(self) -> AwsSettings:
        return self._settings

    def supported_platforms(self) -> frozenset[str]:
        return frozenset({PLATFORMS[self._settings.cpu_architecture]})

    # -- checks before anything is created -----------------------------------------------

    def validate(self, spec: ServiceSpec) -> None:
        """The Fargate size table and the secret references first (no AWS call), then the
        configured subnets and security groups (read-only calls)."""
        task_size(spec.cpu, spec.memory)
        taskdef.secret_arns(spec)
        autoscaling.check(spec, self._settings)
        network.check_given(self._clients.ec2, self._settings)
        network.check_routes(
            self._clients.ec2,
            self._settings,
            public_ip=self._settings.assign_public_ip and spec.public,
            region=self._region(),
        )
        if self._settings.target_group_arn:
            self._balancers.check_target_group(self._settings.target_group_arn)
        elif spec.public:
            self._balancers.check_rule(spec.name)  # also: a configured ALB exists
        if spec.public:
            self._dns.check()

    def image_needs(self, spec: ServiceSpec) -> list[ImageNeed]:
        """``health_command`` runs as ECS's ``CMD-SHELL``, i.e. ``/bin/sh -c <command>`` in the
        container (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html):
        the image needs a shell and what the command runs."""
        command = self._settings.health_command
        if not command:
            return []
        return [
            ImageNeed(
                what=f"health_command {command!r} (ECS CMD-SHELL: /bin/sh -c)",
                any_of=shell_needs(command),
                fix="install it in the Dockerfile (e.g. RUN apt-get install -y curl), use a "
                'command the image has (e.g. python -c "import urllib.request; '
                "urllib.request.urlopen('http://localhost:8000/')\"), or leave health_command "
                "out: the load balancer's health check on health_path gates the deploy",
            )
        ]

    def rollout_seconds(self, spec: ServiceSpec) -> tuple[float, str]:
        """Start, then (behind cloudship's ALB) the health checks a new target must pass
        (interval times healthy threshold) and the deregistration delay ECS waits out before it
        stops the old tasks and calls the rollout COMPLETED
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/load-balancer-connection-draining.html,
        https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html);
        with ``health_command``, its start period and one interval
        (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html)."""
        parts = [(f"start {START_SECONDS} s", START_SECONDS)]
        if spec.public and not self._settings.target_group_arn:
            checks = (
                HEALTH_CHECK["HealthCheckIntervalSeconds"] * HEALTH_CHECK["HealthyThresholdCount"]
            )
            parts.append(
                (
                    f"health checks {HEALTH_CHECK['HealthCheckIntervalSeconds']} s x "
                    f"{HEALTH_CHECK['HealthyThresholdCount']}",
                    checks,
                )
            )
            delay = self._settings.deregistration_delay
            parts.append((f"deregistration delay {delay} s", delay))
        if self._settings.health_command:
            check = taskdef.health_check(self._settings.health_command)
            parts.append(
                (
                    f"container health check start period {check['startPeriod']} s + "
                    f"interval {check['interval']} s",
                    check["startPeriod"] + check["interval"],
                )
            )
        return float(sum(seconds for _, seconds in parts)), " + ".join(w for w, _ in parts)

    # -- reading the current state -------------------------------------------------------

    def _fingerprint_of(self, task_definition_arn: str) -> str | None:
        with aws_errors("describing the serving task definition", DeployError):
            found = self._clients.ecs.describe_task_definition(
                taskDefinition=task_definition_arn, include=["TAGS"]
            )
        tags = {t.get("key"): t.get("value") for t in found.get("tags", [])}
        return tags.get(taskdef.FINGERPRINT_TAG)

    def _execution_role(self, *, create: bool) -> str | None:
        if self._settings.execution_role_arn:
            return self._settings.execution_role_arn
        if create:
            return iam.ensure_execution_role(self._clients.iam, self._region())
        with aws_errors("looking up the execution role", DeployError):
            try:
                return self._clients.iam.get_role(RoleName=iam.EXECUTION_ROLE)["Role"]["Arn"]
            except ClientError as exc:
                if error_code(exc) != "NoSuchEntity":
                    raise
        return None

    @staticmethod
    def _network_config(net: network.Network, assign_public_ip: bool) -> dict[str, Any]:
        return {
            "awsvpcConfiguration": {
                "subnets": list(net.subnets),
                "securityGroups": list(net.security_groups),
                "assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED",
            }
        }

    @staticmethod
    def _same_shape(
        service: ServiceTypeDef,
        spec: ServiceSpec,
        net: network.Network,
        assign_ip: bool,
        target_group: str | None,
    ) -> bool:
        """Desired count, network and load balancer as asked (the task definition is compared
        separately)."""
        current = service.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
        return (
            autoscaling.count_matches(service.get("desiredCount"), spec)
            and sorted(current.get("subnets", [])) == sorted(net.subnets)
            and sorted(current.get("securityGroups", [])) == sorted(net.security_groups)
            and current.get("assignPublicIp", "DISABLED")
            == ("ENABLED" if assign_ip else "DISABLED")
            and ServiceUrls.target_group_of(service) == target_group
        )

    def _ingress(
        self, spec: ServiceSpec
    ) -> tuple[network.Network, str | None, Mapping[str, Any] | None]:
        """Subnets, security groups and the target group of ``spec``'s tasks.

        public, no ``target_group_arn``: the cluster's ALB, a target group and rule for the
        service, and a task group admitting the port from the ALB's groups only.
        ``target_group_arn``: that group; the port is admitted from its load balancers' groups
        (an NLB without groups: from the VPC). ``public=False``: no load balancer, the port
        admitted from the VPC only."""
        ec2 = self._clients.ec2
        subnets, vpc_id = network.locate(ec2, self._settings)
        target_group = self._settings.target_group_arn
        admit: set[str] = set()
        balancer: Mapping[str, Any] | None = None
        if target_group:
            group = self._balancers.check_target_group(target_group)
            with aws_errors("reading the target group's load balancer", DeployError):
                found = self._clients.elbv2.describe_load_balancers(
                    LoadBalancerArns=group["LoadBalancerArns"][:1]
                )["LoadBalancers"]
            admit = {g for lb in found for g in lb.get("SecurityGroups", [])}
            balancer = found[0] if found else None
        elif spec.public:
            ingress = self._balancers.ensure(
                spec.name, spec.port, spec.health_path, subnets, vpc_id
            )
            target_group = ingress.target_group_arn
            admit = set(ingress.security_groups)
            balancer = ingress.balancer
        admit = admit or network.vpc_cidrs(ec2, vpc_id)
        net = network.resolve(
            ec2,
            self._settings,
            spec.name,
            spec.port,
            subnets=subnets,
            vpc_id=vpc_id,
            admit_from=admit,
        )
        return net, target_group, balancer

    @staticmethod
    def _balancing(spec: ServiceSpec, target_group: str | None) -> dict[str, Any]:
        """``loadBalancers`` for CreateService *and* UpdateService (UpdateService replaces the
        list, https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html)."""
        if not target_group:
            return {}
        return {
            "loadBalancers": [
                {
                    "targetGroupArn": target_group,
                    "containerName": taskdef.CONTAINER,
                    "containerPort": spec.port,
                }
            ],
            # ELB health checks are ignored this long after a task starts (app boot time)
            "healthCheckGracePeriodSeconds": HEALTH_GRACE_SECONDS,
        }

    # -- plan and deploy -----------------------------------------------------------------

    def _foreign(self, image: ImageRef) -> bool:
        """True when ``image`` is not in ECR (nor in the registry configured in its place)."""
        host = image.domain
        return not (pullsecret.is_ecr_host(host) or host == self._settings.registry)

    def plan(self, spec: ServiceSpec, image: ImageRef) -> Plan:
        size = task_size(spec.cpu, spec.memory)
        service = describe_service(self._clients, self._settings, spec.name)
        current_td = service.get("taskDefinition") if service else None
        current_digest = self._digest_of(current_td) if current_td else None
        role = self._execution_role(create=False)
        actions: list[str] = []
        if image.digest and role and current_td and service is not None:
            foreign = self._foreign(image)
            desired = taskdef.build(
                spec,
                image,
                size,
                self._settings,
                execution_role=role,
                region=self._region(),
                repository_credentials=(
                    pullsecret.existing_arn(self._clients.secretsmanager, spec.name)
                    if foreign
                    else None
                ),
            )
            if self._fingerprint_of(
                current_td
            ) == desired.fingerprint and autoscaling.count_matches(
                service.get("desiredCount"), spec
            ):
                return Plan(
                    service=spec.name,
                    image=str(image),
                    changed=False,
                    current_digest=current_digest,
                    actions=[f"nothing: {revision_id(current_td)} already runs {image.digest}"],
                )
        if role is None:
            actions.append(f"create IAM role {iam.EXECUTION_ROLE}")
        actions.append(
            f"register task definition {spec.name} ({size.cpu} cpu units, "
            f"{size.memory_mib} MiB, {self._settings.cpu_architecture})"
        )
        verb = "update" if service else "create"
        actions.append(
            f"{verb} ECS service {spec.name} in cluster {self._settings.cluster} "
            f"({spec.replicas} task(s), circuit breaker with rollback)"
        )
        actions.append("wait for the rollout to complete")
        return Plan(
            service=spec.name,
            image=str(image),
            changed=True,
            current_digest=current_digest,
            actions=actions,
        )

    def _region(self) -> str:
        return self._clients.region

    def deploy(
        self,
        spec: ServiceSpec,
        image: ImageRef,
        pull: RegistryAuth | None,
        *,
        timeout: float,
        on_event: EventSink = ignore,
        force: bool = False,
    ) -> Deployment:
        """Images in ECR are pulled by the task execution role, so ``pull`` is not needed;
        from any other registry (e.g. Docker Hub), ``pull`` is stored in Secrets Manager and
        named in ``repositoryCredentials``."""
        deadline = time.monotonic() + timeout
        ship = concurrency.new_ship_id()
        size = task_size(spec.cpu, spec.memory)
        secrets = taskdef.secret_arns(spec)
        if not image.digest:
            raise ConfigError(f"{image} is not pinned by digest", fix="deploy repo@sha256:…")

        self._ensure_cluster(deadline)
        role = self._execution_role(create=True)
        assert role is not None
        pull_secret = (
            pullsecret.ensure(self._clients.secretsmanager, spec.name, pull)
            if pull is not None and self._foreign(image)
            else None
        )
        if not self._settings.execution_role_arn:
            readable = [*secrets.values(), *([pull_secret] if pull_secret else [])]
            iam.grant_secrets(self._clients.iam, spec.name, sorted(readable))
        self._ensure_log_group(spec.name)
        net, target_group, balancer = self._ingress(spec)
        named = self._dns.ensure(balancer) if balancer is not None and spec.public else False
        if named:
            on_event(DeployPhase(phase="dns", detail=f"{self._settings.domain} → load balancer"))
        desired = taskdef.build(
            spec,
            image,
            size,
            self._settings,
            execution_role=role,
            region=self._region(),
            repository_credentials=pull_secret,
        )

        service = describe_service(self._clients, self._settings, spec.name, draining=True)
        if service is not None and service.get("status") == "DRAINING":
            # deleted moments ago (destroy, then ship): ECS refuses the name until INACTIVE
            on_event(DeployPhase(phase="wait", detail=f"{spec.name} is still draining"))
            self._rollout.wait_inactive(spec.name, deadline, timeout)
            service = None
        seen = concurrency.Seen.of(service)  # compared again just before the switch
        current_td = service.get("taskDefinition") if service else None
        same_content = (
            service is not None
            and current_td is not None
            and not force
            and self._fingerprint_of(current_td) == desired.fingerprint
        )
        assign_ip = self._settings.assign_public_ip and spec.public
        if (
            same_content
            and service is not None
            and self._same_shape(service, spec, net, assign_ip, target_group)
        ):
            assert current_td is not None
            scaled = (
                self._autoscaling.ensure(spec, self._scaling_label(balancer, target_group)) or named
            )
            on_event(DeployPhase(phase="unchanged", detail=f"{revision_id(current_td)} serves it"))
            return self._deployment(
                spec, current_td, image.digest, target_group, changed=scaled, previous=None
            )

        # Only the desired count or the network changed: the serving revision is updated in
        # place, without registering an identical task definition.
        td_arn = (
            current_td
            if same_content and current_td
            else self._register(spec.name, desired, ship, on_event)
        )
        network_config = self._network_config(net, assign_ip)
        balancing = self._balancing(spec, target_group)
        # another ship may have switched the service since it was read: refuse, not overwrite
        concurrency.check_unchanged(
            self._clients,
            spec.name,
            seen,
            describe_service(self._clients, self._settings, spec.name),
        )
        if service is None:
            self._create_service(spec, td_arn, network_config, balancing, deadline, on_event)
        else:
            self._update_service(spec, td_arn, network_config, balancing, force, seen, on_event)
        self._autoscaling.ensure(spec, self._scaling_label(balancer, target_group))
        previous_td = current_td if current_td != td_arn else None
        self._rollout.watch(
            spec.name,
            td_arn,
            previous_td,
            deadline,
            timeout,
            on_event,
            target_group=target_group,
        )
        on_event(DeployPhase(phase="done", detail=f"{revision_id(td_arn)} serves {spec.name}"))
        return self._deployment(
            spec,
            td_arn,
            image.digest,
            target_group,
            changed=True,
            previous=revision_id(previous_td) if previous_td else None,
        )

    @staticmethod
    def _scaling_label(balancer: Mapping[str, Any] | None, target_group: str | None) -> str | None:
        if balancer is None or target_group is None:
            return None
        return autoscaling.resource_label(str(balancer["LoadBalancerArn"]), target_group)

    def _deployment(
        self,
        spec: ServiceSpec,
        td_arn: str,
        digest: str,
        target_group: str | None,
        *,
        changed: bool,
        previous: str | None,
    ) -> Deployment:
        image, _ = self._image_of(td_arn)
        return Deployment(
            service=spec.name,
            revision=revision_id(td_arn),
            image=image,
            digest=digest,
            url=self._urls.url(spec.name, td_arn, spec.port, target_group),
            changed=changed,
            previous=previous,
        )

    def _ensure_cluster(self, deadline: float) -> None:
        name = self._settings.cluster
        with aws_errors(f"ensuring ECS cluster {name!r}", DeployError):
            found = self._clients.ecs.describe_clusters(clusters=[name]).get("clusters", [])
        if any(c.get("status") == "ACTIVE" for c in found):
            return
        # A fresh account: the service-linked role first, then the cluster, retried while
        # the role is not visible to ECS yet (propagation.py).
        iam.ensure_service_linked_role(self._clients.iam)
        with aws_errors(f"creating ECS cluster {name!r}", DeployError):
            eventually(
                lambda: self._clients.ecs.create_cluster(
                    clusterName=name, tags=[{"key": "managed-by", "value": "cloudship"}]
                ),
                deadline=deadline,
                wait=self._settings.poll_interval,
            )

    def _ensure_log_group(self, service: str) -> None:
        # Created here rather than with awslogs-create-group, which would need
        # logs:CreateLogGroup on the execution role (not in the managed policy).
        group = taskdef.log_group(service)
        logs = self._clients.logs
        retention = self._settings.log_retention_days
        with aws_errors(f"ensuring log group {group}", DeployError):
            found = next(
                (
                    g
                    for g in logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
                    if g.get("logGroupName") == group
                ),
                None,
            )
            if found is None:
                try:
                    logs.create_log_group(logGroupName=group, tags={"managed-by": "cloudship"})
                except ClientError as exc:
                    if error_code(exc) != "ResourceAlreadyExistsException":
                        raise
            if found is None or found.get("retentionInDays") != retention:
                logs.put_retention_policy(logGroupName=group, retentionInDays=retention)

    def _register(
        self, service: str, desired: taskdef.TaskDefinition, ship: str, on_event: EventSink
    ) -> str:
        with aws_errors(f"registering the task definition of {service!r}", DeployError):
            registered = self._clients.ecs.register_task_definition(
                **desired.register_kwargs(service, ship=ship)
            )
        arn = registered["taskDefinition"]["taskDefinitionArn"]
        on_event(DeployPhase(phase="register", detail=revision_id(arn)))
        return arn

    def _create_service(
        self,
        spec: ServiceSpec,
        td_arn: str,
        network_config: dict[str, Any],
        extra: dict[str, Any],
        deadline: float,
        on_event: EventSink,
    ) -> None:
        with aws_errors(f"creating ECS service {spec.name!r}", DeployError):
            try:
                self._create(spec, td_arn, network_config, extra, deadline)
            except ClientError as exc:
                # Two ships creating one service: ECS refuses the second request, whose
                # parameters differ (its own task definition), as "Creation of service was not
                # idempotent" (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html)
                if "not idempotent" not in str(exc):
                    raise
                now = describe_service(self._clients, self._settings, spec.name)
                holder = concurrency.owner_of(
                    self._clients, str((now or {}).get("taskDefinition") or td_arn)
                )
                raise concurrency.concurrent(spec.name, holder, "by creating it first") from exc
        on_event(DeployPhase(phase="start", detail=f"service {spec.name} ({revision_id(td_arn)})"))

    def _create(
        self,
        spec: ServiceSpec,
        td_arn: str,
        network_config: dict[str, Any],
        extra: dict[str, Any],
        deadline: float,
    ) -> None:
        eventually(
            lambda: self._clients.ecs.create_service(
                cluster=self._settings.cluster,
                serviceName=spec.name,
                taskDefinition=td_arn,
                desiredCount=spec.replicas,
                launchType="FARGATE",
                networkConfiguration=network_config,  # type: ignore[arg-type]
                deploymentConfiguration=CIRCUIT_BREAKER,  # type: ignore[arg-type]
                deploymentController={"type": "ECS"},
                propagateTags="TASK_DEFINITION",
                tags=[{"key": "managed-by", "value": "cloudship"}],
                **extra,
            ),
            deadline=deadline,
            wait=self._settings.poll_interval,
        )

    def _update_service(
        self,
        spec: ServiceSpec,
        td_arn: str,
        network_config: dict[str, Any],
        extra: dict[str, Any],
        force: bool,
        seen: concurrency.Seen,
        on_event: EventSink,
    ) -> None:
        if spec.max_replicas is None:
            extra = {**extra, "desiredCount": spec.replicas}
        # else Application Auto Scaling owns desiredCount: a deploy must not reset it
        with aws_errors(f"updating ECS service {spec.name!r}", DeployError):
            answer = self._clients.ecs.update_service(
                **extra,
                cluster=self._settings.cluster,
                service=spec.name,
                taskDefinition=td_arn,
                networkConfiguration=network_config,  # type: ignore[arg-type]
                deploymentConfiguration=CIRCUIT_BREAKER,  # type: ignore[arg-type]
                forceNewDeployment=force,
            )
        other = concurrency.displaced(seen, answer.get("service", {}), td_arn)
        if other is not None:
            # another ship switched between the re-read and this update: put its revision
            # back rather than lose its update
            with aws_errors(f"giving {spec.name!r} back to {revision_id(other)}", DeployError):
                self._clients.ecs.update_service(
                    cluster=self._settings.cluster, service=spec.name, taskDefinition=other
                )
            raise concurrency.concurrent(
                spec.name,
                concurrency.owner_of(self._clients, other),
                f"while this ship switched it ({revision_id(other)} serves again)",
            )
        on_event(DeployPhase(phase="start", detail=f"update to {revision_id(td_arn)}"))

    # -- day-2 operations ----------------------------------------------------------------

    def _gate_failed(self, td_arn: str) -> bool:
        """True when a deploy of ``td_arn`` failed cloudship's gate (``rollout.GATE_TAG``)."""
        with aws_errors("reading a task definition's tags", DeployError):
            tags = self._clients.ecs.list_tags_for_resource(resourceArn=td_arn).get("tags", [])
        return {"key": GATE_TAG, "value": "failed"} in tags

    def _image_of(self, td_arn: str) -> tuple[str, Any]:
        with aws_errors("describing a task definition", DeployError):
            found = self._clients.ecs.describe_task_definition(taskDefinition=td_arn)
        definition = found["taskDefinition"]
        image = next(
            (
                c.get("image", "")
                for c in definition.get("containerDefinitions", [])
                if c.get("name") == taskdef.CONTAINER
            ),
            "",
        )
        return image, definition

    def _digest_of(self, td_arn: str) -> str | None:
        image, _ = self._image_of(td_arn)
        return image.split("@", 1)[1] if "@" in image else None

    def _revisions(self, name: str) -> list[str]:
        """Task definition ARNs of ``name``'s family still registered, newest first."""
        with aws_errors(f"listing the revisions of {name!r}", DeployError):
            pages = self._clients.ecs.get_paginator("list_task_definitions").paginate(
                familyPrefix=name, status="ACTIVE", sort="DESC"
            )
            arns = [arn for page in pages for arn in page.get("taskDefinitionArns", [])]
        mine = [
            arn for arn in arns if taskdef.family_of(arn) == name
        ]  # familyPrefix matches "name*"
        return sorted(mine, key=lambda arn: int(arn.rsplit(":", 1)[-1]), reverse=True)

    def _not_found(self, name: str) -> ServiceNotFoundError:
        return ServiceNotFoundError(
            f"service {name!r} is not deployed in ECS cluster {self._settings.cluster!r}",
            fix="check the name and the cluster setting, or ship it first",
        )

    def status(self, service: str) -> ServiceStatus | None:
        found = describe_service(self._clients, self._settings, service)
        if found is None:
            return None
        serving = found.get("taskDefinition", "")
        failed = _failed_revisions(found)
        revisions: list[Revision] = []
        url: str | None = None
        for arn in self._revisions(service)[:10]:
            image, definition = self._image_of(arn)
            if arn not in failed and self._gate_failed(arn):
                failed.add(arn)
            port = next(
                (
                    m.get("containerPort", 0)
                    for c in definition.get("containerDefinitions", [])
                    for m in c.get("portMappings", [])
                ),
                0,
            )
            # a failed first deploy leaves the service on its failed revision: never "serving"
            is_serving = arn == serving and arn not in failed
            if is_serving:
                url = self._urls.url(service, arn, port, ServiceUrls.target_group_of(found))
            revisions.append(
                Revision(
                    number=int(arn.rsplit(":", 1)[-1]),
                    native_id=arn,
                    image=image,
                    digest=image.split("@", 1)[1] if "@" in image else "",
                    state="serving" if is_serving else ("failed" if arn in failed else "standby"),
                    created=definition.get("registeredAt"),
                    url=url if is_serving else None,
                )
            )
        current = next((r for r in revisions if r.state == "serving"), None)
        return ServiceStatus(service=service, url=url, current=current, revisions=revisions)

    def rollback(
        self, service: str, to: str | None = None, *, timeout: float, on_event: EventSink = ignore
    ) -> Deployment:
        """Serve an earlier task definition revision (never deregistering any)."""
        deadline = time.monotonic() + timeout
        found = describe_service(self._clients, self._settings, service)
        if found is None:
            raise self._not_found(service)
        serving = found.get("taskDefinition", "")
        failed = _failed_revisions(found)
        # Only ids and states are needed to choose: no DescribeTaskDefinition per revision.
        listed = [
            Revision(
                number=int(arn.rsplit(":", 1)[-1]),
                native_id=arn,
                image="",
                digest="",
                state="serving" if arn == serving else ("failed" if arn in failed else "standby"),
            )
            for arn in self._revisions(service)
        ]
        # A revision whose deploy cloudship failed is tagged (rollout.GATE_TAG); only the
        # candidate the rule picks is checked, then the rule runs again without it.
        while True:
            pick = choose_rollback(service, listed, to)
            if pick.state == "serving" or not self._gate_failed(str(pick.native_id)):
                break
            listed = [
                r.model_copy(update={"state": "failed"}) if r.native_id == pick.native_id else r
                for r in listed
            ]
        chosen = str(pick.native_id)
        image, definition = self._image_of(chosen)
        port = next(
            (
                m.get("containerPort", 0)
                for c in definition.get("containerDefinitions", [])
                for m in c.get("portMappings", [])
            ),
            0,
        )
        digest = image.split("@", 1)[1] if "@" in image else ""
        if chosen == serving:
            return Deployment(
                service=service,
                revision=revision_id(chosen),
                image=image,
                digest=digest,
                url=self._urls.url(service, chosen, port, ServiceUrls.target_group_of(found)),
                changed=False,
            )
        on_event(DeployPhase(phase="rollback", detail=revision_id(chosen)))
        with aws_errors(f"rolling {service!r} back to {revision_id(chosen)}", DeployError):
            self._clients.ecs.update_service(
                cluster=self._settings.cluster, service=service, taskDefinition=chosen
            )
        self._rollout.watch(service, chosen, serving or None, deadline, timeout, on_event)
        return Deployment(
            service=service,
            revision=revision_id(chosen),
            image=image,
            digest=digest,
            url=self._urls.url(service, chosen, port, ServiceUrls.target_group_of(found)),
            changed=True,
            previous=revision_id(serving) if serving else None,
        )

    def services(self) -> list[str]:
        """The ACTIVE services of the cluster that carry cloudship's tag (``managed-by``), so
        services deployed by other tools in the same cluster are left out. DescribeServices
        takes at most 10 services per call
        (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServices.html)."""
        cluster = self._settings.cluster
        with aws_errors(f"listing the services of ECS cluster {cluster!r}", DeployError):
            try:
                pages = self._clients.ecs.get_paginator("list_services").paginate(cluster=cluster)
                arns = [arn for page in pages for arn in page.get("serviceArns", [])]
            except ClientError as exc:
                if error_code(exc) == "ClusterNotFoundException":
                    return []
                raise
            names: list[str] = []
            for start in range(0, len(arns), 10):
                found = self._clients.ecs.describe_services(
                    cluster=cluster, services=arns[start : start + 10], include=["TAGS"]
                )
                names.extend(
                    str(service.get("serviceName"))
                    for service in found.get("services", [])
                    if service.get("status") == "ACTIVE"
                    and {"key": "managed-by", "value": "cloudship"} in service.get("tags", [])
                )
        return sorted(names)

    def logs(self, service: str, tail: int = 100) -> list[str]:
        if describe_service(self._clients, self._settings, service) is None:
            raise self._not_found(service)
        return log_tail(self._clients.logs, service, [], tail)

    def destroy(self, service: str) -> None:
        """Scale to zero, delete the service, deregister its task definitions and remove what
        cloudship created for it (listener rule, target group, security group, secrets policy,
        registry-credentials secret). The log group and the cluster's ALB stay."""
        found = describe_service(self._clients, self._settings, service)
        cluster = self._settings.cluster
        if found is not None:
            self._autoscaling.remove(service)
            with aws_errors(f"deleting ECS service {service!r}", DeployError):
                if found.get("status") == "ACTIVE":
                    self._clients.ecs.update_service(
                        cluster=cluster, service=service, desiredCount=0
                    )
                self._clients.ecs.delete_service(cluster=cluster, service=service, force=True)
        for arn in self._revisions(service):
            with aws_errors(f"deregistering {revision_id(arn)} of {service!r}", DeployError):
                self._clients.ecs.deregister_task_definition(taskDefinition=arn)
        if self._settings.domain and not self._settings.target_group_arn:
            balancer = self._balancers.find_balancer()
            if balancer is not None:
                self._dns.remove(balancer)
        if not self._settings.target_group_arn:
            self._balancers.remove(service)
        if not self._settings.security_groups:
            network.delete_security_group(self._clients.ec2, service)
        pullsecret.delete(self._clients.secretsmanager, service)
        if not self._settings.execution_role_arn:
            with aws_errors("checking the execution role", DeployError):
                try:
                    self._clients.iam.get_role(RoleName=iam.EXECUTION_ROLE)
                except ClientError as exc:
                    if error_code(exc) != "NoSuchEntity":
                        raise
                    return
            iam.grant_secrets(self._clients.iam, service, [])
