"""Retrying ARM writes refused because another operation holds the resource.

Azure answers 409 ``ContainerAppLockConflict`` ("… another modification is in progress. Please
retry the operation.", microsoft/azure-container-apps#175) or
``ManagedEnvironmentOperationInProgress`` (microsoft/azure-container-apps#701) while an
operation on the app or its environment runs — another ship, a portal edit, the platform's own
maintenance. Those are retried with exponential back-off (tenacity) until the deploy's deadline;
any other error, and a conflict that outlasts the deadline, is raised as it came.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from cloudship_azure.errors import arm_code

T = TypeVar("T")

#: ARM error codes that mean "busy, retry later"
LOCK_CODES = frozenset(
    {
        "ContainerAppLockConflict",
        "ManagedEnvironmentOperationInProgress",
        "ContainerAppOperationInProgress",
    }
)


def is_lock_conflict(exc: BaseException) -> bool:
    from azure.core.exceptions import HttpResponseError

    return (
        isinstance(exc, HttpResponseError)
        and exc.status_code == 409
        and arm_code(exc) in LOCK_CODES
    )


def when_unlocked(call: Callable[[], T], *, deadline: float, interval: float) -> T:
    """``call()``, retried while ARM answers a lock conflict and the deadline allows."""
    retrying = Retrying(
        retry=retry_if_exception(is_lock_conflict),
        wait=wait_exponential(multiplier=interval, min=interval, max=30),
        stop=stop_after_delay(max(0.0, deadline - time.monotonic())),
        reraise=True,
    )
    return retrying(call)
