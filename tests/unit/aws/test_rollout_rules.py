"""Which stopped tasks fail a deploy at once, and which AWS errors are retried as propagation."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cloudship_aws.propagation import MAX_ATTEMPTS, eventually, is_propagating
from cloudship_aws.rollout import is_app_failure


def error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateService")


@pytest.mark.parametrize(
    ("task", "app"),
    [
        (
            {
                "stoppedReason": "Essential container in task exited",
                "containers": [{"exitCode": 1}],
            },
            True,
        ),
        ({"stoppedReason": "Task failed ELB health checks in (target-group arn:x)"}, True),
        ({"stoppedReason": "Task failed container health checks"}, True),
        ({"stoppedReason": "OutOfMemoryError: Container killed due to memory usage"}, True),
        (
            {
                "stopCode": "TaskFailedToStart",
                "stoppedReason": "ResourceInitializationError: unable to pull secrets or "
                "registry auth",
            },
            False,
        ),
        (
            {
                "stopCode": "TaskFailedToStart",
                "stoppedReason": "Timeout waiting for network interface provisioning to complete.",
            },
            False,
        ),
        (
            {"stopCode": "SpotInterruption", "stoppedReason": "Your Spot Task was interrupted."},
            False,
        ),
        (
            {
                "stoppedReason": "Essential container in task exited",
                "containers": [{"exitCode": 0}],
            },
            False,
        ),
    ],
)
def test_stopped_task_classification(task: dict[str, Any], app: bool) -> None:
    assert is_app_failure(task) is app


def test_only_documented_propagation_errors_are_retried() -> None:
    assert is_propagating(
        error(
            "InvalidParameterException",
            "Unable to assume the service linked role. "
            "Please verify that the ECS service linked role exists.",
        )
    )
    assert not is_propagating(error("InvalidParameterException", "Invalid 'cpu' setting for task"))
    assert not is_propagating(error("AccessDeniedException", "not authorized"))


def test_eventually_is_bounded_by_attempts_and_deadline() -> None:
    calls: list[int] = []

    def always_racing() -> None:
        calls.append(1)
        raise error("InvalidParameterException", "Unable to assume the service linked role.")

    with pytest.raises(ClientError):
        eventually(always_racing, deadline=time.monotonic() + 60, wait=0.001)
    assert len(calls) == MAX_ATTEMPTS
    calls.clear()
    with pytest.raises(ClientError):
        eventually(always_racing, deadline=time.monotonic(), wait=0.001)
    assert len(calls) == 1


def test_eventually_returns_once_visible() -> None:
    answers = iter([error("ClientException", "ECS was unable to assume the role 'arn:x'"), None])

    def call() -> str:
        failure = next(answers)
        if failure:
            raise failure
        return "created"

    assert eventually(call, deadline=time.monotonic() + 5, wait=0.001) == "created"
