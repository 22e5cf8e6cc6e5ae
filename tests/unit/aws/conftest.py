"""Offline boto3 clients: fake credentials and an unroutable endpoint, so any call that is not
answered by a ``Stubber`` fails loudly instead of reaching AWS."""

from __future__ import annotations

import boto3
import pytest

from cloudship_aws.session import AwsClients
from cloudship_aws.settings import AwsSettings


@pytest.fixture
def offline_clients(monkeypatch: pytest.MonkeyPatch) -> AwsClients:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    settings = AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return AwsClients(settings, session)
