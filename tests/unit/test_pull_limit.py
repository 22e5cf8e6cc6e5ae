"""PullLimitProxy's counting rule, without a registry: GETs of manifests count per account,
HEADs never do, an unlimited (paid) account gets no rate-limit headers."""

from cloudship.ratelimit import RateLimit
from cloudship.testing.pull_limit import PullLimitProxy

PATH = "/v2/alice/web/manifests/latest"


def test_gets_count_heads_do_not_and_the_limit_answers_429() -> None:
    proxy = PullLimitProxy("127.0.0.1:1", limit=2)
    assert proxy.count("HEAD", PATH, "alice") == (
        0,
        {
            "ratelimit-limit": "2;w=3600",
            "ratelimit-remaining": "2;w=3600",
            "docker-ratelimit-source": "alice",
        },
    )
    assert proxy.count("GET", PATH, "alice")[0] == 0
    status, headers = proxy.count("GET", PATH, "alice")
    assert status == 0 and headers["ratelimit-remaining"] == "0;w=3600"
    status, headers = proxy.count("GET", PATH, "alice")
    assert status == 429 and proxy.used == {"alice": 2}
    limit = RateLimit.from_headers(headers)
    assert limit.retry_after is None and limit.wait() == 3600.0, "no Retry-After, like the Hub"


def test_anonymous_pulls_count_per_ip_and_paid_accounts_are_unlimited() -> None:
    proxy = PullLimitProxy("127.0.0.1:1", limits={"acme-ci": None})
    assert proxy.limit_of("ip:192.0.2.1") == 10 and proxy.limit_of("alice") == 100
    for _ in range(150):
        assert proxy.count("GET", PATH, "acme-ci") == (0, {})
