"""ECR login tokens: decoded in memory, reused until close to expiresAt, then fetched again.

The Stubber wraps the very client the registry uses; an unexpected extra call fails the test.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber

from cloudship.errors import AuthError
from cloudship_aws.ecr import EcrRegistry
from cloudship_aws.session import AwsClients
from cloudship_aws.settings import AwsSettings

PASSWORD = "eyJwYXlsb2FkIjoic2VjcmV0In0-not-a-real-token"


def token_response(expires_in: timedelta, password: str = PASSWORD) -> dict[str, object]:
    return {
        "authorizationData": [
            {
                "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
                "expiresAt": datetime.now(UTC) + expires_in,
                "proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
            }
        ]
    }


def test_token_is_decoded_and_reused_until_stale(offline_clients: AwsClients) -> None:
    registry = EcrRegistry(AwsSettings(), offline_clients)
    with Stubber(offline_clients.ecr) as stub:
        stub.add_response("get_authorization_token", token_response(timedelta(hours=12)))
        first = registry.credentials()
        again = registry.credentials()  # a second API call would find no stubbed answer
        stub.assert_no_pending_responses()
    assert first is again
    assert first.username == "AWS"
    assert first.password.get_secret_value() == PASSWORD
    assert first.server == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert PASSWORD not in repr(first) and PASSWORD not in str(first)


def test_token_close_to_expiry_is_refreshed(offline_clients: AwsClients) -> None:
    registry = EcrRegistry(AwsSettings(), offline_clients)
    with Stubber(offline_clients.ecr) as stub:
        stub.add_response("get_authorization_token", token_response(timedelta(minutes=2)))
        stub.add_response(
            "get_authorization_token", token_response(timedelta(hours=12), "fresh-token")
        )
        registry.credentials()
        fresh = registry.credentials()
        stub.assert_no_pending_responses()
    assert fresh.password.get_secret_value() == "fresh-token"


def test_registry_override_is_the_login_server(offline_clients: AwsClients) -> None:
    registry = EcrRegistry(AwsSettings(registry="vpce-1.dkr.ecr.example:443"), offline_clients)
    with Stubber(offline_clients.ecr) as stub:
        stub.add_response("get_authorization_token", token_response(timedelta(hours=12)))
        auth = registry.credentials()
    assert auth.server == "vpce-1.dkr.ecr.example:443"
    assert registry.address == "vpce-1.dkr.ecr.example:443"  # no STS call needed for it


def test_expired_session_credentials_are_an_auth_error(offline_clients: AwsClients) -> None:
    registry = EcrRegistry(AwsSettings(), offline_clients)
    with Stubber(offline_clients.sts) as stub:
        stub.add_client_error(
            "get_caller_identity",
            service_error_code="ExpiredToken",
            service_message="The security token included in the request is expired",
            http_status_code=403,
        )
        with pytest.raises(AuthError, match="ExpiredToken"):
            registry.prepare()
