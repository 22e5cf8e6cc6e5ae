from cloudship.engine import ImageInfo

D = "sha256:" + "c" * 64


def info(*digests: str) -> ImageInfo:
    return ImageInfo(
        id="sha256:" + "0" * 64,
        platform="linux/amd64",
        repo_digests=digests,
        exposed_ports=(),
    )


def test_digest_in_matches_registry_qualified_names() -> None:
    assert info(f"127.0.0.1:5000/app@{D}").digest_in("127.0.0.1:5000/app") == D
    assert info(f"127.0.0.1:5000/app@{D}").digest_in("127.0.0.1:5001/app") is None


def test_digest_in_docker_hub_short_names() -> None:
    # The engine records Docker Hub repositories by their short name.
    assert info(f"alice/web@{D}").digest_in("docker.io/alice/web") == D
    assert info(f"python@{D}").digest_in("docker.io/library/python") == D
    assert info(f"alice/web@{D}").digest_in("docker.io/alice/other") is None
