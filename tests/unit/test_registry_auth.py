"""RegistryAuth: the password never shows, and its fingerprint changes when it does."""

from pydantic import SecretStr

from cloudship.registry import RegistryAuth

SECRET = "dckr_pat_fingerprint-test-value"


def auth(
    password: str = SECRET, username: str = "alice", server: str = "docker.io"
) -> RegistryAuth:
    return RegistryAuth(username=username, password=SecretStr(password), server=server)


def test_fingerprint_is_stable_and_moves_with_any_part() -> None:
    one = auth().fingerprint()
    assert one == auth().fingerprint(), "stable across objects (and processes: no random salt)"
    assert len(one) == 24 and int(one, 16) >= 0
    assert auth(password="dckr_pat_rotated").fingerprint() != one
    assert auth(username="bob").fingerprint() != one
    assert auth(server="127.0.0.1:5000").fingerprint() != one


def test_neither_the_secret_nor_its_plain_hash_leaks() -> None:
    import hashlib

    value = auth()
    shown = f"{value!r} {value} {value.fingerprint()}"
    assert SECRET not in shown
    assert hashlib.sha256(SECRET.encode()).hexdigest()[:24] not in shown
