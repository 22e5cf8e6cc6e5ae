"""Amazon ECR as a cloudship ``Registry``: private repositories, in-memory login tokens."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError
from pydantic import SecretStr

from cloudship.distribution import DistributionClient
from cloudship.errors import AuthError, RegistryError
from cloudship.events import EventSink, ignore
from cloudship.registry import Registry, RegistryAuth
from cloudship_aws import names
from cloudship_aws.errors import aws_errors, error_code
from cloudship_aws.session import AwsClients
from cloudship_aws.settings import AwsSettings

if TYPE_CHECKING:
    from mypy_boto3_ecr.type_defs import EncryptionConfigurationTypeDef, ImageIdentifierTypeDef

MISSING_IMAGE_CODES = frozenset({"ImageNotFoundException", "RepositoryNotFoundException"})
_TOKEN_FIELD = re.compile(r'("authorizationToken"\s*:\s*")[^"]*(")')


class _RedactLoginTokens(logging.Filter):
    """botocore logs every response body at DEBUG, login token included: blank it out."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "authorizationToken" in message:
            record.msg, record.args = _TOKEN_FIELD.sub(r"\1<redacted>\2", message), None
        return True


def _redact_tokens_in_botocore_logs() -> None:
    logger = logging.getLogger("botocore.parsers")
    if not any(isinstance(f, _RedactLoginTokens) for f in logger.filters):
        logger.addFilter(_RedactLoginTokens())


class EcrRegistry(Registry):
    """ECR of the configured account and region.

    The push login comes from ``GetAuthorizationToken``: decoded in memory, never written to a
    Docker config file, and fetched again when it is within five minutes of ``expiresAt``.
    """

    kind: ClassVar[str] = "ecr"

    def __init__(self, settings: AwsSettings, clients: AwsClients) -> None:
        self._settings = settings
        self._clients = clients
        self._auth: RegistryAuth | None = None
        self._account: str | None = None
        self._lock = threading.Lock()

    @property
    def account(self) -> str:
        """The AWS account id of the credentials in use (one STS call, then cached)."""
        if self._account is None:
            with aws_errors("checking the AWS credentials (sts:GetCallerIdentity)", AuthError):
                self._account = self._clients.sts.get_caller_identity()["Account"]
        return self._account

    @property
    def address(self) -> str:
        if self._settings.registry:
            return self._settings.registry
        region = self._clients.region
        return f"{self.account}.dkr.ecr.{region}.{names.dns_suffix(region)}"

    def prepare(self, on_event: EventSink = ignore) -> None:
        """Fail early, before anything is created, when the credentials do not work."""
        _ = self.account

    def repository(self, name: str, *, create: bool = True) -> str:
        """``<registry>/<name>``; the repository is created private with scan-on-push and
        AES256 (or KMS) encryption when missing. An existing repository is left as it is:
        its encryption cannot change after creation. ECR's name rule is checked first."""
        names.check_repository_name(name)
        if create:
            self._ensure_repository(name)
        return f"{self.address}/{name}"

    def _ensure_repository(self, name: str) -> None:
        with aws_errors(f"looking up ECR repository {name!r}", RegistryError):
            try:
                self._clients.ecr.describe_repositories(repositoryNames=[name])
                return
            except ClientError as exc:
                if error_code(exc) != "RepositoryNotFoundException":
                    raise
        encryption: EncryptionConfigurationTypeDef = (
            {"encryptionType": "KMS", "kmsKey": self._settings.kms_key}
            if self._settings.kms_key
            else {"encryptionType": "AES256"}
        )
        with aws_errors(f"creating ECR repository {name!r}", RegistryError):
            try:
                self._clients.ecr.create_repository(
                    repositoryName=name,
                    imageTagMutability="MUTABLE",
                    imageScanningConfiguration={"scanOnPush": self._settings.scan_on_push},
                    encryptionConfiguration=encryption,
                    tags=[{"Key": "managed-by", "Value": "cloudship"}],
                )
            except ClientError as exc:
                # Another ship() of the same service may have created it a moment ago.
                if error_code(exc) != "RepositoryAlreadyExistsException":
                    raise
                return
            self._clients.ecr.put_lifecycle_policy(
                repositoryName=name, lifecyclePolicyText=json.dumps(self.lifecycle_policy())
            )

    def lifecycle_policy(self) -> dict[str, Any]:
        """Expire all but the newest ``keep_revisions`` images of a repository cloudship
        created, so ECR storage does not grow with every ship
        (https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html).
        Rollback can reach back that far; older revisions' images are gone."""
        return {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"cloudship: keep the newest {self._settings.keep_revisions}",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": self._settings.keep_revisions,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }

    def credentials(self) -> RegistryAuth:
        with self._lock:
            if self._auth is None or self._auth.stale():
                self._auth = self._login()
            return self._auth

    def _login(self) -> RegistryAuth:
        _redact_tokens_in_botocore_logs()
        with aws_errors("getting an ECR login token (ecr:GetAuthorizationToken)", AuthError):
            data = self._clients.ecr.get_authorization_token()["authorizationData"][0]
        try:
            user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        except (KeyError, ValueError) as exc:
            raise AuthError(
                "ECR returned an authorization token cloudship cannot read",
                fix="check AWS_ENDPOINT_URL points at ECR (or a faithful emulator)",
            ) from exc
        server = self._settings.registry or data["proxyEndpoint"].removeprefix("https://")
        return RegistryAuth(
            username=user,
            password=SecretStr(password),
            server=server,
            expires_at=data.get("expiresAt"),
        )

    writes_indexes: ClassVar[bool] = True

    def distribution(self) -> DistributionClient:
        """ECR's registry API with the ``GetAuthorizationToken`` login as HTTP Basic, as
        ``docker login`` uses it (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html).
        Image indexes go through it rather than ``PutImage``, which would need every child
        manifest fetched with ``BatchGetImage`` first: ECR takes Docker manifest lists and OCI
        indexes on both (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-manifest-formats.html)."""
        return DistributionClient(self.address, self.credentials())

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest ECR records for ``repository:reference``; None when the repository or
        the image does not exist (``DescribeImages`` raises for both)."""
        image_id: ImageIdentifierTypeDef = (
            {"imageDigest": reference}
            if reference.startswith("sha256:")
            else {"imageTag": reference}
        )
        with aws_errors(f"looking up {repository}:{reference} in ECR", RegistryError):
            try:
                found = self._clients.ecr.describe_images(
                    repositoryName=repository, imageIds=[image_id]
                )
            except ClientError as exc:
                if error_code(exc) in MISSING_IMAGE_CODES:
                    return None
                raise
        details = found.get("imageDetails", [])
        return details[0].get("imageDigest") if details else None
