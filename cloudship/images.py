"""Image references, digests and platforms.

The grammar is Docker's (``github.com/distribution/reference``)::

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [ domain "/" ] path-component [ "/" path-component ]*
    domain    := host [ ":" port ]      host: DNS name, IPv4, [IPv6] or "localhost"
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest    := algorithm ":" hex      (sha256 → exactly 64 lower-case hex digits)

As in Docker, the first component is a registry host only when it contains ``.`` or ``:`` or
is ``localhost``; otherwise the reference is on Docker Hub. Nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from cloudship.errors import ConfigError

DOCKER_HUB = "docker.io"

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN_RE = re.compile(rf"^{_HOST}(?::[0-9]+)?$")
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_MAX_NAME = 255

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm"}


def _bad(text: str, why: str, fix: str | None = None) -> ConfigError:
    return ConfigError(f"invalid image reference {text!r}: {why}", fix=fix)


def parse_digest(text: str) -> str:
    """Return ``text`` if it is a valid content digest, else raise ``ConfigError``."""
    if not _DIGEST_RE.match(text):
        raise ConfigError(
            f"invalid digest {text!r}: expected 'algorithm:hex'",
            fix="use a digest such as 'sha256:' followed by 64 hex digits",
        )
    if text.startswith("sha256:") and not _SHA256_RE.match(text):
        raise ConfigError(
            f"invalid digest {text!r}: sha256 needs exactly 64 lower-case hex digits",
            fix="copy the whole digest, e.g. from `docker images --digests`",
        )
    return text


_PORT = re.compile(r"^[0-9]{1,5}$")


def is_loopback_host(registry: str) -> bool:
    """True when ``registry`` (``host[:port]``) names this machine: plain HTTP is safe there.

    Decided by parsing, never by prefix: an IPv4 literal in 127.0.0.0/8, the IPv6 literal
    ``::1`` (bare or as ``[::1]``), or exactly ``localhost``, each with an optional port.
    ``127.evil.example`` or ``localhost.evil.example`` are DNS names anyone can point anywhere.
    """
    if not isinstance(registry, str):
        return False
    host, port = registry, ""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return False
        host, rest = host[1:end], host[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return False
            port = rest[1:]
            if not _PORT.match(port):
                return False
        return _is_loopback_ip(host, version=6)
    if host.count(":") > 1:  # a bare IPv6 literal, which cannot carry a port
        return _is_loopback_ip(host, version=6)
    host, sep, port = host.partition(":")
    if sep and not _PORT.match(port):
        return False
    return host == "localhost" or _is_loopback_ip(host, version=4)


def _is_loopback_ip(text: str, *, version: int) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.version == version and address.is_loopback


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed image reference. ``registry`` is ``None`` for Docker Hub references as written."""

    repository: str
    registry: str | None = None
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse and validate ``text``; a bad reference raises ``ConfigError`` quoting it."""
        if not text or text != text.strip():
            raise _bad(text, "empty or surrounded by whitespace")
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            try:
                parse_digest(digest)
            except ConfigError as exc:
                raise _bad(text, exc.message, exc.fix) from None
        registry: str | None = None
        first, slash, remainder = rest.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            if not _DOMAIN_RE.match(first):
                raise _bad(text, f"registry host {first!r} is not a valid host[:port]")
            registry, rest = first, remainder
        tag: str | None = None
        last_slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > last_slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
            if not _TAG_RE.match(tag):
                raise _bad(
                    text,
                    f"tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}",
                )
        if not rest:
            raise _bad(text, "the repository name is empty")
        if not _PATH_RE.match(rest):
            why = "repository names are lower-case letters, digits and . _ - separators"
            fix = f"try {rest.lower()!r}" if rest.lower() != rest else None
            if "//" in rest or rest.startswith("/") or rest.endswith("/"):
                why = "empty path component"
            raise _bad(text, why, fix)
        name_len = len(rest) + (len(registry) + 1 if registry else 0)
        if name_len > _MAX_NAME:
            raise _bad(text, f"name is {name_len} characters; the limit is {_MAX_NAME}")
        return cls(repository=rest, registry=registry, tag=tag, digest=digest)

    @property
    def domain(self) -> str:
        """The registry host, with Docker Hub spelled out."""
        return self.registry or DOCKER_HUB

    @property
    def name(self) -> str:
        """``registry/repository`` as written (no tag, no digest)."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def path(self) -> str:
        """Repository path as the registry API sees it (``library/`` added on Docker Hub)."""
        if self.registry in (None, DOCKER_HUB, "index.docker.io") and "/" not in self.repository:
            return f"library/{self.repository}"
        return self.repository

    def with_digest(self, digest: str) -> ImageRef:
        return replace(self, digest=parse_digest(digest), tag=None)

    def with_tag(self, tag: str) -> ImageRef:
        if not _TAG_RE.match(tag):
            raise _bad(f"{self.name}:{tag}", f"tag {tag!r} is not valid")
        return replace(self, tag=tag, digest=None)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def normalize_platform(text: str) -> str:
    """Normalise ``os/arch[/variant]`` (``x86_64`` → ``amd64``, ``aarch64`` → ``arm64``)."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(
            f"invalid platform {text!r}: expected 'os/arch' or 'os/arch/variant'",
            fix="use e.g. 'linux/amd64' or 'linux/arm64'",
        )
    parts[1] = _ARCH_ALIASES.get(parts[1], parts[1])
    if parts[1] == "arm64" and len(parts) == 3 and parts[2] == "v8":
        parts = parts[:2]  # linux/arm64/v8 is how registries spell plain linux/arm64
    return "/".join(parts)
