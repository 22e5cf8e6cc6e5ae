"""AWS's own rules for names, ARNs and hosts, checked before any call.

- ECR repository names: 2-256 characters, lower-case, components separated by single ``.``,
  ``_`` or ``-`` (``a`` and ``a--b`` pass cloudship's core name rule but not ECR's)
  (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html).
- CloudWatch Logs retention: only the listed day counts
  (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html).
- Partitions: ARNs start ``arn:aws:``, ``arn:aws-cn:`` or ``arn:aws-us-gov:``; China's service
  hosts end in ``amazonaws.com.cn``
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html).
- Secrets Manager ARNs as ECS accepts them in ``valueFrom``: the full ARN, with an optional
  ``:json-key:version-stage:version-id`` tail, or a partial ARN without the six-character
  suffix; IAM matches the *secret's* ARN, so the execution role's policy names
  ``…:secret:NAME-??????`` for a partial one and never the JSON-key tail
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html,
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples.html).
"""

from __future__ import annotations

import re

from cloudship.errors import ConfigError

RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
_ECR_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


def partition(region: str) -> str:
    """``cn-north-1`` → ``aws-cn``; ``us-gov-west-1`` → ``aws-us-gov``; else ``aws``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def dns_suffix(region: str) -> str:
    return "amazonaws.com.cn" if partition(region) == "aws-cn" else "amazonaws.com"


def check_repository_name(name: str) -> None:
    if not (2 <= len(name) <= 256 and _ECR_NAME.match(name)):
        raise ConfigError(
            f"{name!r} is not a valid ECR repository name: 2-256 lower-case letters and digits, "
            "parts separated by a single '.', '_' or '-'",
            fix=f"pass name={re.sub(r'[-_.]{2,}', '-', name).strip('-_.') or 'app'!r} "
            "(at least two characters)",
        )


def check_retention(days: int) -> int:
    if days not in RETENTION_DAYS:
        nearest = min(RETENTION_DAYS, key=lambda d: abs(d - days))
        raise ValueError(
            f"CloudWatch Logs keeps logs for one of {', '.join(map(str, RETENTION_DAYS))} days, "
            f"not {days} (nearest: {nearest})"
        )
    return days


def policy_resource(arn: str) -> str:
    """The ARN an IAM policy must name so the execution role may read ``arn`` (a
    ``valueFrom``): the secret itself, without a JSON-key tail; ``-??????`` after a partial
    Secrets Manager ARN. SSM parameter ARNs are returned as they are."""
    head, sep, rest = arn.partition(":secret:")
    if not sep:
        return arn
    name = rest.split(":", 1)[0]
    if not _SECRET_SUFFIX.search(name):
        name += "-??????"
    return f"{head}:secret:{name}"
