"""Opt-in smoke test against a real AWS account (``pytest -m cloud``).

Skipped unless boto3 finds credentials (and AWS_ENDPOINT_URL does not point elsewhere). It ships
the tiny app to ECR + ECS Fargate in the default VPC (cluster ``cloudship``, created if missing),
checks the public URL answers, re-ships unchanged, and then deletes the service, its task
definitions and the ECR repository. The cluster, the execution role and the log group stay
for the next run. Costs a few cents; takes a few minutes.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest

import cloudship
from cloudship import ship
from cloudship.engine import Engine

pytestmark = [pytest.mark.cloud, pytest.mark.slow]


@pytest.fixture
def real_aws() -> None:
    if os.environ.get("AWS_ENDPOINT_URL"):
        pytest.skip("real-AWS smoke test: AWS_ENDPOINT_URL points at something else")
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        boto3.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        pytest.skip(f"real-AWS smoke test: no usable AWS credentials ({type(exc).__name__})")


@pytest.mark.usefixtures("real_aws")
def test_ship_to_real_fargate(app_dir: Path, cloudship_engine: Engine) -> None:
    import boto3

    name = f"cs-smoke-{uuid.uuid4().hex[:6]}"
    try:
        shipment = ship(app_dir, "aws", name=name, port=8000, timeout=900)
        assert shipment.url is not None and shipment.url.endswith(":8000")
        deadline = time.monotonic() + 120  # the security group and ENI may lag the rollout
        while True:
            try:
                assert httpx.get(shipment.url, timeout=10).text == "v1\n"
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(5)
        again = ship(app_dir, "aws", name=name, port=8000, timeout=900)
        assert not again.changed
    finally:
        cloudship.destroy(name, "aws")
        ecr = boto3.client("ecr")
        with contextlib.suppress(ecr.exceptions.RepositoryNotFoundException):
            ecr.delete_repository(repositoryName=name, force=True)
