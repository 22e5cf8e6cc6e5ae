"""Retrying the errors AWS documents as eventual consistency, with bounded back-off (tenacity).

A fresh account or a just-created role is not usable everywhere at once:

- IAM: "changes ... take time to become visible from other services"; a role used right
  after ``CreateRole`` may be refused
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
- ECS creates its service-linked role ``AWSServiceRoleForECS`` on first use; until it is
  visible, ``CreateCluster``/``CreateService`` fail with ``InvalidParameterException: Unable to
  assume the service linked role. Please verify that the ECS service linked role exists.``
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html).
- A service with a load balancer validates the target group with that role: ``Unable to assume
  role and validate the specified targetGroupArn``.

Only these codes *with* these messages are retried; any other rejected request surfaces at once
(it is the user's input, and waiting would only hide it). Throttling and 5xx are botocore's
own retry mode's job (``session.client_config``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from cloudship_aws.errors import error_code

T = TypeVar("T")

#: error code → message fragments (lower case) meaning "not visible yet"
PROPAGATING: dict[str, tuple[str, ...]] = {
    "InvalidParameterException": (
        "unable to assume the service linked role",
        "unable to assume role and validate the specified targetgrouparn",
        "ecs was unable to assume the role",
    ),
    "ClientException": ("ecs was unable to assume the role", "role is not valid"),
}
MAX_ATTEMPTS = 8


def is_propagating(exc: BaseException) -> bool:
    """True for an error AWS documents as "not visible yet" (see the module docstring)."""
    if not isinstance(exc, ClientError):
        return False
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return any(fragment in message for fragment in PROPAGATING.get(error_code(exc), ()))


def eventually(call: Callable[[], T], *, deadline: float, wait: float) -> T:
    """``call()``, retried while it fails with a propagating error: exponential back-off from
    ``wait`` seconds (capped at 8 times ``wait``), at most ``MAX_ATTEMPTS`` tries and never past
    ``deadline`` (``time.monotonic()``). The last error is re-raised unchanged."""

    retrying = Retrying(
        retry=retry_if_exception(is_propagating),
        wait=wait_exponential(multiplier=wait, min=wait, max=8 * wait),
        stop=stop_after_attempt(MAX_ATTEMPTS)
        | stop_after_delay(max(deadline - time.monotonic(), 0)),
        reraise=True,
    )
    return retrying(call)
