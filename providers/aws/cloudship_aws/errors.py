"""The one place botocore exceptions become cloudship errors.

Every AWS call of the provider runs inside ``aws_errors(...)``; callers that expect a
particular error code (a missing repository, an existing log group) catch ``ClientError``
inside the block first, via ``error_code``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    TokenRetrievalError,
)

from cloudship.errors import AuthError, CloudshipError, ConfigError

# Codes meaning "who you are" is the problem, whatever the service.
AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
# Codes meaning the request itself (so the user's settings or spec) is wrong.
INPUT_CODES = frozenset(
    {
        "ClientException",
        "InvalidParameterException",
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "ValidationError",
        "ValidationException",
        "InvalidSubnetID.NotFound",
        "InvalidSubnet",
        "InvalidGroup.NotFound",
        "InvalidGroupId.Malformed",
        "InvalidVpcID.NotFound",
        "NoSuchEntity",
    }
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")


@contextmanager
def aws_errors(doing: str, default: type[CloudshipError]) -> Iterator[None]:
    """Translate botocore errors raised while ``doing`` (e.g. "creating the ECR repository").

    Authentication problems become ``AuthError``, rejected input ``ConfigError``, and the rest
    ``default`` (``RegistryError`` for ECR, ``DeployError`` for ECS and friends).
    """
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError, TokenRetrievalError) as exc:
        raise AuthError(
            f"no usable AWS credentials while {doing} ({type(exc).__name__})",
            fix="configure credentials the boto3 way: AWS_PROFILE, aws sso login, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance/task role",
        ) from exc
    except NoRegionError as exc:
        raise ConfigError(
            f"no AWS region is configured while {doing}",
            fix="set AWS_REGION, or region= in [aws] / CLOUDSHIP_AWS_REGION",
        ) from exc
    except EndpointConnectionError as exc:
        raise default(
            f"AWS endpoint unreachable while {doing}: {exc}",
            fix="check the network, the region and AWS_ENDPOINT_URL if set",
        ) from exc
    except ClientError as exc:
        code = error_code(exc)
        if code in AUTH_CODES:
            raise AuthError(
                f"AWS refused the credentials while {doing} ({_message(exc)})",
                fix="refresh the credentials (expired session/SSO token?) and check the IAM "
                "policy in docs/aws.md",
            ) from exc
        if code in INPUT_CODES or code.startswith("Invalid"):
            raise ConfigError(
                f"AWS rejected the request while {doing} ({_message(exc)})",
                fix="check the [aws] settings (subnets, security groups, roles) and the service "
                "spec",
            ) from exc
        raise default(f"AWS error while {doing} ({_message(exc)})") from exc
    except BotoCoreError as exc:
        raise default(f"AWS SDK error while {doing}: {exc}") from exc
