"""Settings of the ``aws`` target: the ``[aws]`` table < ``CLOUDSHIP_AWS_*`` < ``ship()`` kwargs.

AWS credentials are never settings: they come from boto3's own chain (environment, profile,
SSO, instance/task role), so cloudship never holds a long-lived AWS secret.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloudship_aws.names import check_retention


class AwsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDSHIP_AWS_", extra="forbid")

    #: AWS region; default: boto3's chain (``AWS_REGION``, ``AWS_DEFAULT_REGION``, profile)
    region: str | None = None
    #: named profile from ``~/.aws/config``; default: boto3's chain
    profile: str | None = None
    #: one endpoint for every service (moto, LocalStack, a private endpoint); boto3 also reads
    #: ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` by itself
    endpoint_url: str | None = None

    #: registry host images are pushed to; default: the ``proxyEndpoint`` ECR returns with the
    #: login token (set it for private/FIPS endpoints, or for a local registry in tests)
    registry: str | None = None
    #: ``AES256`` by default; a KMS key ARN/alias switches new repositories to ``KMS``
    kms_key: str | None = None
    scan_on_push: bool = True
    #: images a repository cloudship creates keeps (an ECR lifecycle policy expires older ones;
    #: rollback reaches back as far)
    keep_revisions: int = Field(default=10, ge=1, le=1000)

    cluster: str = "cloudship"
    #: subnets for the tasks; default: the default VPC's default subnets
    subnets: list[str] = Field(default_factory=list)
    #: security groups for the tasks; default: one per service opening its port
    security_groups: list[str] = Field(default_factory=list)
    #: tasks in public subnets need a public IP to pull images without a NAT gateway
    #: (a ``public=False`` service never gets one)
    assign_public_ip: bool = True
    #: adopt an existing target group (type ``ip``, attached to a load balancer) instead of
    #: the ALB cloudship manages; the URL is then its load balancer's DNS name
    target_group_arn: str | None = None
    #: the ALB public services sit behind: a name or ARN to adopt; default: one per cluster,
    #: ``cloudship-<cluster>``, created on first use
    load_balancer: str | None = None
    #: subnets for a created ALB (public, in two or more AZs); default: the task subnets
    load_balancer_subnets: list[str] = Field(default_factory=list)
    #: an ACM certificate ARN: adds an HTTPS listener on 443 and redirects HTTP to it
    certificate_arn: str | None = None
    #: host name routed to this service (a ``host-header`` rule) and used in its URL
    domain: str | None = None
    #: the Route 53 hosted zone ``domain`` is in (an alias record to the ALB is kept there);
    #: default: the account's public zone whose name is the longest suffix of ``domain``, if any
    hosted_zone_id: str | None = None
    #: with ``max_replicas``: also scale on the ALB's requests per target (a second
    #: target-tracking policy, ``ALBRequestCountPerTarget``), keeping each task near this many
    #: requests a minute; needs a public service behind the load balancer
    requests_per_target: int | None = Field(default=None, ge=1)
    #: path pattern routed to this service, e.g. ``/api/*``; with neither ``domain`` nor
    #: ``path`` the service takes ``/*``
    path: str | None = None
    #: seconds the ALB keeps sending in-flight requests to a replaced task (AWS default: 300)
    deregistration_delay: int = Field(default=30, ge=0, le=3600)

    #: task execution role (pulls the image, writes logs, reads secrets); default: one ensured
    execution_role_arn: str | None = None
    #: role the application itself runs as; default: none
    task_role_arn: str | None = None
    #: Fargate ``runtimePlatform.cpuArchitecture``; images must match (linux/amd64 or linux/arm64)
    cpu_architecture: Literal["X86_64", "ARM64"] = "X86_64"
    #: a container health check, opt-in: a shell command run inside the task (``CMD-SHELL``),
    #: e.g. ``"curl -fsS http://127.0.0.1:8000/health || exit 1"``; the image must have what it
    #: runs. None: no container check; the gate is the load balancer's target health plus
    #: ECS's deployment state (python:3.11-slim and distroless images have neither wget nor curl)
    health_command: str | None = None
    #: one of the day counts CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, … 3653)
    log_retention_days: Annotated[int, AfterValidator(check_retention)] = 30
    #: seconds between rollout polls (AWS rollouts take minutes; tests lower it)
    poll_interval: float = Field(default=5.0, gt=0)
