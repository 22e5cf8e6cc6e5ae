"""Autoscaling of a service's task count: Application Auto Scaling target tracking on CPU,
and optionally on the ALB's requests per target (``requests_per_target``).

``replicas`` is the minimum and ``max_replicas`` the maximum; the policy keeps the service's
average CPU near ``TARGET_CPU`` percent
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-autoscaling-targettracking.html,
https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html).
While a scalable target exists, Application Auto Scaling owns ``desiredCount``: deploys leave it
alone. Everything is read before it is written, so an unchanged ship only describes.
"""

from __future__ import annotations

from typing import Any

from cloudship.errors import ConfigError, DeployError
from cloudship.runtime import ServiceSpec
from cloudship_aws.errors import aws_errors
from cloudship_aws.session import AwsClients
from cloudship_aws.settings import AwsSettings

NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"
TARGET_CPU = 60.0
COOLDOWN_SECONDS = 60


def policy_name(service: str) -> str:
    return f"cloudship-cpu-{service}"


def requests_policy_name(service: str) -> str:
    return f"cloudship-requests-{service}"


def resource_label(balancer_arn: str, target_group_arn: str) -> str:
    """``app/<lb-name>/<lb-id>/targetgroup/<tg-name>/<tg-id>``, the ``ResourceLabel`` of
    ``ALBRequestCountPerTarget``, from the two ARNs' final parts
    (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PredefinedMetricSpecification.html)."""
    balancer = balancer_arn.split(":loadbalancer/", 1)[-1]
    group = target_group_arn.rsplit(":", 1)[-1]
    return f"{balancer}/{group}"


def count_matches(desired: object, spec: ServiceSpec) -> bool:
    """The service's ``desiredCount`` is what ``spec`` asks: equal to ``replicas``, or within
    ``replicas..max_replicas`` while autoscaling owns it."""
    if spec.max_replicas is None:
        return desired == spec.replicas
    return isinstance(desired, int) and spec.replicas <= desired <= spec.max_replicas


def check(spec: ServiceSpec, settings: AwsSettings) -> None:
    """``max_replicas`` below ``replicas``, and ``requests_per_target`` without autoscaling or
    without cloudship's load balancer, are refused before any call."""
    if spec.max_replicas is not None and spec.max_replicas < max(spec.replicas, 1):
        raise ConfigError(
            f"max_replicas={spec.max_replicas} is below replicas={spec.replicas} (the minimum)",
            fix=f"pass max_replicas >= {max(spec.replicas, 1)}, or drop max_replicas",
        )
    if settings.requests_per_target is None:
        return
    if spec.max_replicas is None:
        raise ConfigError(
            "requests_per_target scales between replicas and max_replicas, and max_replicas "
            "is not set",
            fix="pass max_replicas= as well, or drop requests_per_target",
        )
    if not spec.public or settings.target_group_arn:
        raise ConfigError(
            "requests_per_target counts the requests of cloudship's load balancer, and this "
            "service " + ("is not public" if not spec.public else "uses target_group_arn"),
            fix="drop requests_per_target (CPU scaling stays), or ship the service public=True "
            "without target_group_arn",
        )


class Autoscaling:
    def __init__(self, settings: AwsSettings, clients: AwsClients) -> None:
        self._settings = settings
        self._clients = clients

    def _resource(self, service: str) -> str:
        return f"service/{self._settings.cluster}/{service}"

    def current(self, service: str) -> dict[str, Any] | None:
        """The service's scalable target, or None (read-only)."""
        with aws_errors(f"reading the autoscaling of {service!r}", DeployError):
            found = self._clients.autoscaling.describe_scalable_targets(
                ServiceNamespace=NAMESPACE,
                ResourceIds=[self._resource(service)],
                ScalableDimension=DIMENSION,
            )["ScalableTargets"]
        return dict(found[0]) if found else None

    def ensure(self, spec: ServiceSpec, label: str | None = None) -> bool:
        """Make the scaling of ``spec.name`` what the spec says (after the service exists);
        True when something had to be written. ``label``: the ALB/target group
        ``ResourceLabel`` for ``requests_per_target``."""
        aas = self._clients.autoscaling
        resource = self._resource(spec.name)
        target = self.current(spec.name)
        with aws_errors(f"configuring the autoscaling of {spec.name!r}", DeployError):
            if spec.max_replicas is None:
                if target is not None:
                    aas.deregister_scalable_target(
                        ServiceNamespace=NAMESPACE, ResourceId=resource, ScalableDimension=DIMENSION
                    )
                return target is not None
            changed = False
            if target is None or (target.get("MinCapacity"), target.get("MaxCapacity")) != (
                spec.replicas,
                spec.max_replicas,
            ):
                aas.register_scalable_target(
                    ServiceNamespace=NAMESPACE,
                    ResourceId=resource,
                    ScalableDimension=DIMENSION,
                    MinCapacity=spec.replicas,
                    MaxCapacity=spec.max_replicas,
                )
                changed = True
            wanted = {
                "TargetValue": TARGET_CPU,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                },
                "ScaleInCooldown": COOLDOWN_SECONDS,
                "ScaleOutCooldown": COOLDOWN_SECONDS,
            }
            changed |= self._policy(resource, policy_name(spec.name), wanted)
            per_target = self._settings.requests_per_target
            requests = requests_policy_name(spec.name)
            if per_target is not None and label is not None:
                changed |= self._policy(
                    resource,
                    requests,
                    {
                        "TargetValue": float(per_target),
                        "PredefinedMetricSpecification": {
                            "PredefinedMetricType": "ALBRequestCountPerTarget",
                            "ResourceLabel": label,
                        },
                        "ScaleInCooldown": COOLDOWN_SECONDS,
                        "ScaleOutCooldown": COOLDOWN_SECONDS,
                    },
                )
            elif self._existing(resource, requests):
                aas.delete_scaling_policy(
                    PolicyName=requests,
                    ServiceNamespace=NAMESPACE,
                    ResourceId=resource,
                    ScalableDimension=DIMENSION,
                )
                changed = True
        return changed

    def _existing(self, resource: str, name: str) -> dict[str, Any] | None:
        policies = self._clients.autoscaling.describe_scaling_policies(
            ServiceNamespace=NAMESPACE,
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            PolicyNames=[name],
        )["ScalingPolicies"]
        # matched by name here too: moto answers every policy of the resource
        found = next((p for p in policies if p.get("PolicyName") == name), None)
        return dict(found) if found else None

    def _policy(self, resource: str, name: str, wanted: dict[str, Any]) -> bool:
        """A target-tracking policy ``name`` configured as ``wanted`` (read first)."""
        found = self._existing(resource, name)
        have = found.get("TargetTrackingScalingPolicyConfiguration") if found else None
        if have is not None and all(have.get(k) == v for k, v in wanted.items()):
            return False
        self._clients.autoscaling.put_scaling_policy(
            PolicyName=name,
            ServiceNamespace=NAMESPACE,
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=wanted,
        )
        return True

    def remove(self, service: str) -> None:
        if self.current(service) is None:
            return
        with aws_errors(f"removing the autoscaling of {service!r}", DeployError):
            self._clients.autoscaling.deregister_scalable_target(
                ServiceNamespace=NAMESPACE,
                ResourceId=self._resource(service),
                ScalableDimension=DIMENSION,
            )
