"""The token service behind TokenRegistry, over HTTP, without the registry or an engine:
it accepts exactly the configured logins and tokens and what it issued, nothing else."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from cloudship.testing.token_registry import NULL_GUID, TokenService

SERVICE = "127.0.0.1:5999"
SCOPE = "repository:team/app:pull,push"


@pytest.fixture
def tokens() -> Iterator[TokenService]:
    service = TokenService(
        service=SERVICE, issuer="test-issuer", users={"ci": "pat-1"}, aad_tokens={"aad-ok"}
    )
    service.start()
    yield service
    service.stop()


def _exchange(tokens: TokenService, aad: str, service: str = SERVICE) -> httpx.Response:
    return httpx.post(
        f"{tokens.url}/oauth2/exchange",
        data={"grant_type": "access_token", "service": service, "access_token": aad},
    )


def _claims(tokens: TokenService, token: str) -> dict[str, object]:
    header = jwt.get_unverified_header(token)
    cert = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert cert == tokens.key.cert  # the registry trusts it through rootcertbundle
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    decoded: dict[str, object] = jwt.decode(token, key, algorithms=["ES256"], audience=SERVICE)
    return decoded


def test_docker_hub_style_basic_login(tokens: TokenService) -> None:
    answer = httpx.get(
        f"{tokens.url}/token", params={"service": SERVICE, "scope": SCOPE}, auth=("ci", "pat-1")
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token"] == body["access_token"] and body["expires_in"] > 0
    claims = _claims(tokens, body["token"])
    assert claims["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}
    ]
    assert claims["iss"] == "test-issuer"

    for auth in (("ci", "wrong"), ("someone", "pat-1")):
        assert (
            httpx.get(f"{tokens.url}/token", params={"scope": SCOPE}, auth=auth).status_code == 401
        )
    assert httpx.get(f"{tokens.url}/token", params={"scope": SCOPE}).status_code == 401


def test_acr_exchange_then_token(tokens: TokenService) -> None:
    assert _exchange(tokens, "aad-wrong").status_code == 401
    assert _exchange(tokens, "aad-ok", service="other.azurecr.io").status_code == 400
    refresh = _exchange(tokens, "aad-ok").json()["refresh_token"]

    posted = httpx.post(
        f"{tokens.url}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "service": SERVICE,
            "scope": SCOPE,
            "refresh_token": refresh,
        },
    )
    assert posted.status_code == 200 and _claims(tokens, posted.json()["access_token"])["access"]
    # what `docker push` does with `-u 00000000-… -p <refresh token>`
    basic = httpx.get(
        f"{tokens.url}/oauth2/token",
        params={"service": SERVICE, "scope": SCOPE},
        auth=(NULL_GUID, refresh),
    )
    assert basic.status_code == 200
    forged = refresh[:-4] + ("AAAA" if not refresh.endswith("AAAA") else "BBBB")
    assert (
        httpx.get(
            f"{tokens.url}/oauth2/token", params={"scope": SCOPE}, auth=(NULL_GUID, forged)
        ).status_code
        == 401
    )


def test_expired_refresh_token_is_refused() -> None:
    service = TokenService(
        service=SERVICE, issuer="i", aad_tokens={"aad"}, refresh_ttl=dt.timedelta(seconds=-30)
    )
    service.start()
    try:
        refresh = _exchange(service, "aad").json()["refresh_token"]
        answer = httpx.get(
            f"{service.url}/oauth2/token", params={"scope": SCOPE}, auth=(NULL_GUID, refresh)
        )
        assert answer.status_code == 401
    finally:
        service.stop()
