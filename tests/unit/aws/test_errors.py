"""botocore errors become cloudship errors at one boundary, chained to the original."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from cloudship.errors import AuthError, ConfigError, DeployError, RegistryError
from cloudship_aws.errors import aws_errors


def client_error(code: str, message: str = "boom") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "AnyOperation")


def test_missing_credentials_is_an_auth_error_with_the_fix() -> None:
    with (
        pytest.raises(AuthError, match="no usable AWS credentials") as caught,
        aws_errors("creating things", DeployError),
    ):
        raise NoCredentialsError()
    assert isinstance(caught.value.__cause__, NoCredentialsError)
    assert "AWS_PROFILE" in str(caught.value)


@pytest.mark.parametrize("code", ["ExpiredTokenException", "ExpiredToken", "AccessDenied"])
def test_refused_credentials_are_auth_errors(code: str) -> None:
    with pytest.raises(AuthError, match=code), aws_errors("reading", RegistryError):
        raise client_error(code, "The security token included in the request is expired")


@pytest.mark.parametrize(
    "code", ["InvalidParameterException", "ClientException", "InvalidSubnetID.NotFound"]
)
def test_rejected_input_is_a_config_error(code: str) -> None:
    with (
        pytest.raises(ConfigError, match=code) as caught,
        aws_errors("creating the service", DeployError),
    ):
        raise client_error(code)
    assert isinstance(caught.value.__cause__, ClientError)


def test_anything_else_takes_the_default_class() -> None:
    with (
        pytest.raises(RegistryError, match=r"while pushing.*ServerException: down"),
        aws_errors("pushing", RegistryError),
    ):
        raise client_error("ServerException", "down")


def test_unreachable_endpoint() -> None:
    with pytest.raises(DeployError, match="unreachable"), aws_errors("deploying", DeployError):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
