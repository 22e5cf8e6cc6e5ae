"""Ship the monitor app to AWS (ECR + ECS on Fargate) and show its revisions.

Needs AWS credentials the boto3 way (AWS_PROFILE, aws sso login, AWS_ACCESS_KEY_ID/...) and a
region, plus the IAM permissions listed in docs/aws.md:

    export AWS_PROFILE=<profile> AWS_REGION=us-east-1
    .venv/bin/python examples/ship_aws.py

The ECR repository, the ECS cluster ``cloudship``, the task execution role, the log group, the
cluster's Application Load Balancer (the URL printed is its DNS name, stable across deploys), a
target group and listener rule for the service and its security group are created on first
use, in the default VPC. Re-running it unchanged moves nothing. Remove the service with
``cloudship.destroy("monitor", "aws")`` (the cluster's ALB stays for its other services).

CI runs this file against moto (tests/integration/aws/test_example_ship_aws.py).
"""

from __future__ import annotations

from pathlib import Path

import cloudship
from cloudship import ship
from cloudship.cli import err
from cloudship.cli_report import Reporter


def main() -> None:
    app = Path(__file__).parent / "monitor-app"
    result = ship(
        app,
        target="aws",
        name="monitor",
        port=8000,
        cpu=0.25,
        memory="512Mi",
        env={"MODE": "prod"},
        platform="linux/amd64",  # Fargate X86_64 (set cpu_architecture="ARM64" for arm64)
        timeout=900,
        on_event=Reporter(err.console),
    )
    print(f"{'shipped' if result.changed else 'unchanged'}: {result.name} {result.revision}")
    print(f"  image  {result.image}")
    print(f"  url    {result.url}")
    for revision in cloudship.status("monitor", "aws").revisions:
        print(f"  {revision.state:8} {revision.id}  {revision.digest[:19]}")


if __name__ == "__main__":
    main()
