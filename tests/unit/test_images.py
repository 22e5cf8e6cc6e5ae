import pytest

from cloudship.errors import ConfigError
from cloudship.images import ImageRef, is_loopback_host, normalize_platform, parse_digest

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", None, "busybox", None, None),
        ("mi-monitor-app:v1.0", None, "mi-monitor-app", "v1.0", None),
        ("library/python:3.11-slim", None, "library/python", "3.11-slim", None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/app:1", "localhost:5000", "app", "1", None),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000", "team/app", None, None),
        (
            "acrname.azurecr.io/mi-monitor-app:v1.0",
            "acrname.azurecr.io",
            "mi-monitor-app",
            "v1.0",
            None,
        ),
        (
            f"123456789012.dkr.ecr.us-east-1.amazonaws.com/a/b/c@{D}",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "a/b/c",
            None,
            D,
        ),
        (f"app:v2@{D}", None, "app", "v2", D),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None),
        ("a.b-c/f_g__h--i", "a.b-c", "f_g__h--i", None, None),
        ("team/f.g_h", None, "team/f.g_h", None, None),
        ("REGISTRY.example.com/app", "REGISTRY.example.com", "app", None, None),
    ],
)
def test_parse_valid(
    text: str, registry: str | None, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert str(ref) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        (" app", "whitespace"),
        ("App", "lower-case"),
        ("app:", "tag"),
        ("app:-bad", "tag"),
        ("app:" + "x" * 129, "tag"),
        ("app@sha256:abc", "64"),
        ("app@md5", "digest"),
        ("host:5000/", "empty"),
        ("team//app", "empty path component"),
        ("bad_host-.com:5000/app", "registry host"),
        ("a" * 256, "limit"),
    ],
)
def test_parse_invalid_quotes_reference(text: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        ImageRef.parse(text)
    assert repr(text)[:30] in str(info.value) or text == ""
    assert reason in str(info.value)


def test_uppercase_repository_suggests_lowercase() -> None:
    with pytest.raises(ConfigError, match="try 'myapp'"):
        ImageRef.parse("MyApp")


def test_docker_hub_paths() -> None:
    assert ImageRef.parse("python:3.11").path == "library/python"
    assert ImageRef.parse("docker.io/python").path == "library/python"
    assert ImageRef.parse("org/app").path == "org/app"
    assert ImageRef.parse("python").domain == "docker.io"
    assert ImageRef.parse("127.0.0.1:5000/python").path == "python"


def test_with_digest_drops_tag_and_validates() -> None:
    ref = ImageRef.parse("127.0.0.1:5000/app:v1")
    assert str(ref.with_digest(D)) == f"127.0.0.1:5000/app@{D}"
    with pytest.raises(ConfigError):
        ref.with_digest("sha256:nothex")
    assert str(ref.with_tag("v2")) == "127.0.0.1:5000/app:v2"


def test_digest_and_platform_helpers() -> None:
    assert parse_digest(D) == D
    with pytest.raises(ConfigError, match="64"):
        parse_digest("sha256:" + "A" * 64)
    assert normalize_platform("linux/x86_64") == "linux/amd64"
    assert normalize_platform("Linux/aarch64") == "linux/arm64"
    assert normalize_platform("linux/arm64/v8") == "linux/arm64"
    assert normalize_platform("linux/arm/v7") == "linux/arm/v7"
    with pytest.raises(ConfigError, match="os/arch"):
        normalize_platform("amd64")


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("127.1.2.3", True),
        ("registry.example.com", False),
        ("10.0.0.1:5000", False),
    ],
)
def test_loopback(address: str, loopback: bool) -> None:
    assert is_loopback_host(address) is loopback
