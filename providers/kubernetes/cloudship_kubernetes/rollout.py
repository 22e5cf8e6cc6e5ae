"""Judging a rollout the way ``kubectl rollout status`` does, plus failing fast on pods.

``rollout_state`` is kubectl's DeploymentStatusViewer (staging/src/k8s.io/kubectl/pkg/
polymorphichelpers/rollout_status.go): the controller must have observed the newest
generation; a Progressing condition with reason ProgressDeadlineExceeded is a failure;
otherwise the rollout is done when every wanted replica is updated and available and no old
replica is left. https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status

kubectl would wait out the progress deadline for a pod that can never start; ``pod_failure``
stops at once on the waiting reasons the kubelet gives such pods (CrashLoopBackOff,
ImagePullBackOff, ErrImagePull, CreateContainerConfigError, InvalidImageName):
https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-state-waiting
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: waiting reasons from which a pod does not recover without a new template
FAIL_FAST = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "InvalidImageName",
    }
)
TIMED_OUT = "ProgressDeadlineExceeded"


@dataclass(frozen=True)
class RolloutState:
    done: bool
    failed: bool
    message: str


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def rollout_state(deployment: dict[str, Any]) -> RolloutState:
    name = deployment["metadata"]["name"]
    generation = deployment["metadata"].get("generation", 0)
    status = deployment.get("status") or {}
    if generation > status.get("observedGeneration", 0):
        return RolloutState(False, False, "Waiting for deployment spec update to be observed...")
    progressing = condition(deployment, "Progressing")
    if progressing and progressing.get("reason") == TIMED_OUT:
        return RolloutState(False, True, f"deployment {name!r} exceeded its progress deadline")
    wanted = deployment["spec"].get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    replicas = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted:
        return RolloutState(
            False, False, f"{updated} out of {wanted} new replicas have been updated..."
        )
    if replicas > updated:
        return RolloutState(
            False, False, f"{replicas - updated} old replicas are pending termination..."
        )
    if available < updated:
        return RolloutState(
            False, False, f"{available} of {updated} updated replicas are available..."
        )
    return RolloutState(True, False, f"deployment {name!r} successfully rolled out")


def pod_failure(pod: dict[str, Any]) -> str | None:
    """Why ``pod`` cannot become Ready without a new template, or None."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in FAIL_FAST:
            message = waiting.get("message") or ""
            last = (container.get("lastState") or {}).get("terminated") or {}
            if last.get("exitCode") is not None:
                message = f"{message} (last exit code {last['exitCode']})".strip()
            return f"pod {pod['metadata']['name']}: {reason}: {message}".rstrip(": ")
    return None
