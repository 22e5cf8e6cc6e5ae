import pytest
from pydantic import SecretStr, ValidationError

from cloudship.errors import ConfigError
from cloudship.runtime import ServiceSpec, memory_bytes, service_name


def test_fingerprint_changes_with_spec_and_image_but_hides_secrets() -> None:
    spec = ServiceSpec(name="web", port=8000, secrets={"API_KEY": SecretStr("s3cr3t-value")})
    base = spec.fingerprint("r/app@sha256:1")
    assert base == ServiceSpec(
        name="web", port=8000, secrets={"API_KEY": SecretStr("s3cr3t-value")}
    ).fingerprint("r/app@sha256:1")
    assert base != spec.fingerprint("r/app@sha256:2")
    assert base != spec.model_copy(update={"port": 8001}).fingerprint("r/app@sha256:1")
    other_secret = spec.model_copy(update={"secrets": {"API_KEY": SecretStr("changed")}})
    assert base != other_secret.fingerprint("r/app@sha256:1")
    assert "s3cr3t" not in repr(spec) and "s3cr3t" not in spec.model_dump_json()


@pytest.mark.parametrize("name", ["Web", "-web", "web_", "a" * 64, ""])
def test_bad_service_names(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid service name"):
        service_name(name)


def test_spec_validation() -> None:
    with pytest.raises(ValidationError, match="health_path"):
        ServiceSpec(name="web", port=80, health_path="health")
    with pytest.raises(ValidationError):
        ServiceSpec(name="web", port=70000)
    with pytest.raises(ValidationError, match="environment variable name"):
        ServiceSpec(name="web", port=80, env={"BAD-NAME": "x"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512Mi", 512 * 1024**2),
        ("1Gi", 1024**3),
        ("0.5Gi", 512 * 1024**2),
        ("1000", 1000),
        ("1G", 10**9),
        ("2gb", 2 * 10**9),
    ],
)
def test_memory_bytes(text: str, expected: int) -> None:
    assert memory_bytes(text) == expected


def test_memory_bad() -> None:
    with pytest.raises(ConfigError, match="512Mi"):
        memory_bytes("lots")
