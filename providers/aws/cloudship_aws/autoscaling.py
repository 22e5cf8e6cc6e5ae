"""Autoscaling of a service's task count: Application Auto Scaling target tracking on CPU.

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


def count_matches(desired: object, spec: ServiceSpec) -> bool:
    """The service's ``desiredCount`` is what ``spec`` asks: equal to ``replicas``, or within
    ``replicas..max_replicas`` while autoscaling owns it."""
    if spec.max_replicas is None:
        return desired == spec.replicas
    return isinstance(desired, int) and spec.replicas <= desired <= spec.max_replicas


def check(spec: ServiceSpec) -> None:
    """``max_replicas`` below ``replicas`` is refused before any call."""
    if spec.max_replicas is not None and spec.max_replicas < max(spec.replicas, 1):
        raise ConfigError(
            f"max_replicas={spec.max_replicas} is below replicas={spec.replicas} (the minimum)",
            fix=f"pass max_replicas >= {max(spec.replicas, 1)}, or drop max_replicas",
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

    def ensure(self, spec: ServiceSpec) -> bool:
        """Make the scaling of ``spec.name`` what the spec says (after the service exists);
        True when something had to be written."""
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
            policies = aas.describe_scaling_policies(
                ServiceNamespace=NAMESPACE,
                ResourceId=resource,
                ScalableDimension=DIMENSION,
                PolicyNames=[policy_name(spec.name)],
            )["ScalingPolicies"]
            wanted = {
                "TargetValue": TARGET_CPU,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                },
                "ScaleInCooldown": COOLDOWN_SECONDS,
                "ScaleOutCooldown": COOLDOWN_SECONDS,
            }
            have = policies[0].get("TargetTrackingScalingPolicyConfiguration") if policies else None
            if have is None or any(have.get(k) != v for k, v in wanted.items()):
                aas.put_scaling_policy(
                    PolicyName=policy_name(spec.name),
                    ServiceNamespace=NAMESPACE,
                    ResourceId=resource,
                    ScalableDimension=DIMENSION,
                    PolicyType="TargetTrackingScaling",
                    TargetTrackingScalingPolicyConfiguration=wanted,
                )
                changed = True
        return changed

    def remove(self, service: str) -> None:
        if self.current(service) is None:
            return
        with aws_errors(f"removing the autoscaling of {service!r}", DeployError):
            self._clients.autoscaling.deregister_scalable_target(
                ServiceNamespace=NAMESPACE,
                ResourceId=self._resource(service),
                ScalableDimension=DIMENSION,
            )
