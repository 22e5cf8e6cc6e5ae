"""EKS-style authentication for the fake cluster: a bearer token is a presigned STS
``GetCallerIdentity`` URL, which the API server calls to learn who is asking.

As aws-iam-authenticator checks it (pkg/token/token.go, ``Verify``): the token starts with
``k8s-aws-v1.``, decodes (unpadded base64url) to an https/http URL whose query is
``Action=GetCallerIdentity``, signed (``X-Amz-SignedHeaders``) over ``x-k8s-aws-id``, with
``X-Amz-Expires`` at most 15 minutes; the URL is then fetched with ``x-k8s-aws-id: <cluster>``
and must answer 200 with the caller's ARN. A token for another cluster fails that call's
signature at STS; moto does not check signatures, so the cluster name is also compared with
the signed header list and the header sent. Point the STS endpoint at a loopback moto so the
call never leaves this machine. https://docs.aws.amazon.com/eks/latest/userguide/cluster-auth.html
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

from cloudship.images import is_loopback_host

PREFIX = "k8s-aws-v1."
MAX_EXPIRES = 15 * 60


def moto_routing(query: dict[str, str]) -> dict[str, str]:
    """Headers that let a single-endpoint moto route the presigned call to STS.

    A real token's URL names the STS host, and STS reads the signature from the query. Here
    the URL points at a loopback moto, which picks the service from an ``Authorization``
    header's credential scope and ignores ``Host``; this repeats the query's scope
    (``X-Amz-Credential``) there. moto does not check signatures either way."""
    scope = query.get("X-Amz-Credential", "")
    return {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"
    }


class EksAuthenticator:
    """``authenticate`` for ``FakeCluster``; ``identities`` records the ARNs that signed in."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.identities: list[str] = []

    def __call__(self, token: str) -> bool:
        if not token.startswith(PREFIX):
            return False
        encoded = token[len(PREFIX) :]
        try:
            url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        signed = query.get("X-Amz-SignedHeaders", "").split(";")
        if (
            parts.scheme not in ("http", "https")
            or not is_loopback_host(parts.hostname or "")  # never call out of this machine
            or query.get("Action") != "GetCallerIdentity"
            or "x-k8s-aws-id" not in signed
            or not query.get("X-Amz-Signature")
            or int(query.get("X-Amz-Expires", "0") or 0) > MAX_EXPIRES
        ):
            return False
        request = urllib.request.Request(
            url, headers={"x-k8s-aws-id": self.cluster, **moto_routing(query)}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                body = answer.read().decode()
        except (urllib.error.URLError, OSError):
            return False
        arn = re.search(r"<Arn>([^<]+)</Arn>", body)
        if arn is None:
            return False
        self.identities.append(arn[1])
        return True
