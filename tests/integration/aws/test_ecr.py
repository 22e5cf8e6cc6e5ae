"""ECR against moto in server mode: repository settings, login token, digest lookup, and bad
credentials refused before anything is created."""

from __future__ import annotations

import base64
import hashlib
import json
import logging

import pytest
from botocore.stub import Stubber

from cloudship.config import ConfigFile
from cloudship.errors import AuthError
from cloudship_aws import AwsClients, AwsSettings, EcrRegistry, provider
from cloudship_aws.testing import MOTO_ECR_LOGIN, MotoServer

CONFIG = b'{"architecture": "amd64", "os": "linux"}'
MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": len(CONFIG),
        "digest": "sha256:" + hashlib.sha256(CONFIG).hexdigest(),
    },
    "layers": [],
}


def ecr_of(**settings: object) -> EcrRegistry:
    registry = provider.target(ConfigFile(), dict(settings)).registry
    assert isinstance(registry, EcrRegistry)
    return registry


def test_repository_is_created_private_scanned_and_encrypted(cloudship_aws_env: MotoServer) -> None:
    registry = ecr_of()
    address = registry.repository("team/web")
    assert address == "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web"
    assert registry.repository("team/web") == address  # idempotent
    (repo,) = cloudship_aws_env.client("ecr").describe_repositories()["repositories"]
    assert repo["repositoryName"] == "team/web"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfiguration"]["encryptionType"] == "AES256"
    assert repo["imageTagMutability"] == "MUTABLE"


def test_a_created_repository_keeps_keep_revisions_images(cloudship_aws_env: MotoServer) -> None:
    import json

    ecr_of(keep_revisions=3).repository("web")
    found = cloudship_aws_env.client("ecr").get_lifecycle_policy(repositoryName="web")
    (rule,) = json.loads(found["lifecyclePolicyText"])["rules"]
    assert rule["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 3,
    }
    assert rule["action"] == {"type": "expire"}


def test_names_ecr_refuses_make_no_call(cloudship_aws_env: MotoServer) -> None:
    from cloudship.errors import ConfigError

    with pytest.raises(ConfigError, match="not a valid ECR repository name"):
        ecr_of().repository("a--b")
    assert cloudship_aws_env.client("ecr").describe_repositories()["repositories"] == []


def test_kms_key_switches_encryption(cloudship_aws_env: MotoServer) -> None:
    key = cloudship_aws_env.client("kms").create_key()["KeyMetadata"]["Arn"]
    ecr_of(kms_key=key).repository("secure")
    (repo,) = cloudship_aws_env.client("ecr").describe_repositories()["repositories"]
    assert repo["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": key}


def test_plan_mode_creates_nothing(cloudship_aws_env: MotoServer) -> None:
    ecr_of().repository("web", create=False)
    assert cloudship_aws_env.client("ecr").describe_repositories()["repositories"] == []


def test_login_is_moto_token_decoded(cloudship_aws_env: MotoServer) -> None:
    auth = ecr_of().credentials()
    assert (auth.username, auth.password.get_secret_value()) == MOTO_ECR_LOGIN
    assert auth.server == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert MOTO_ECR_LOGIN[1] not in repr(auth)


def test_manifest_digest_missing_is_none_and_present_is_found(
    cloudship_aws_env: MotoServer,
) -> None:
    registry = ecr_of()
    assert registry.manifest_digest("nothing-here", "v1") is None  # no repository
    registry.repository("web")
    assert registry.manifest_digest("web", "v1") is None  # no image
    manifest = json.dumps(MANIFEST)
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    cloudship_aws_env.client("ecr").put_image(
        repositoryName="web",
        imageManifest=manifest,
        imageManifestMediaType=MANIFEST["mediaType"],
        imageTag="v1",
        imageDigest=digest,
    )
    assert registry.manifest_digest("web", "v1") == digest
    assert registry.manifest_digest("web", digest) == digest


def test_missing_credentials_refused_before_anything_is_created(
    cloudship_aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    registry = ecr_of()
    with pytest.raises(AuthError, match="no usable AWS credentials"):
        registry.prepare()
    assert cloudship_aws_env.client("ecr").describe_repositories()["repositories"] == []


def test_expired_token_refused_before_anything_is_created(cloudship_aws_env: MotoServer) -> None:
    settings = AwsSettings()
    clients = AwsClients(settings)
    registry = EcrRegistry(settings, clients)
    # Stubber on the real STS client the registry uses: moto cannot expire a session token.
    with Stubber(clients.sts) as stub:
        stub.add_client_error("get_caller_identity", "ExpiredToken", "token expired", 403)
        with pytest.raises(AuthError, match="ExpiredToken"):
            registry.prepare()
    assert cloudship_aws_env.client("ecr").describe_repositories()["repositories"] == []


def test_login_token_never_reaches_the_logs(
    cloudship_aws_env: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # botocore logs whole response bodies at DEBUG
    ecr_of().credentials()
    token = base64.b64encode(":".join(MOTO_ECR_LOGIN).encode()).decode()
    assert "authorizationToken" in caplog.text  # the response was logged ...
    assert token not in caplog.text  # ... without the token
    assert MOTO_ECR_LOGIN[1] not in caplog.text
