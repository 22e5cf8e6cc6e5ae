"""``domain`` in Route 53: an alias record to the service's load balancer.

With ``domain`` set and a hosted zone for it (``hosted_zone_id``, or the account's public zone
whose name is the longest suffix of the domain), the deploy UPSERTs an ``A`` alias record —
and ``AAAA`` for a dual-stack ALB — whose target is the ALB's DNS name and its canonical hosted
zone id (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/routing-to-elb-load-balancer.html,
https://docs.aws.amazon.com/Route53/latest/APIReference/API_AliasTarget.html). The records are
read first: a re-ship that finds them right makes no write. A name that already has a CNAME or
a plain (non-alias) record is someone else's and is refused before anything is created. With
no zone for the domain nothing is written: its DNS is managed elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from cloudship.errors import ConfigError, DeployError
from cloudship_aws.errors import aws_errors, error_code
from cloudship_aws.session import AwsClients
from cloudship_aws.settings import AwsSettings


def _fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


def record_types(balancer: Mapping[str, Any]) -> list[str]:
    """``A``, plus ``AAAA`` when the load balancer answers on IPv6 too."""
    return (
        ["A", "AAAA"] if str(balancer.get("IpAddressType", "")).startswith("dualstack") else ["A"]
    )


class Dns:
    def __init__(self, settings: AwsSettings, clients: AwsClients) -> None:
        self._settings = settings
        self._clients = clients

    def zone(self) -> str | None:
        """The hosted zone id for ``domain``, or None (no domain, or no zone for it)."""
        domain = self._settings.domain
        if not domain:
            return None
        route53 = self._clients.route53
        wanted = _fqdn(domain)
        given = self._settings.hosted_zone_id
        with aws_errors("looking up the hosted zone of the domain", ConfigError):
            if given:
                zone_id = given.rsplit("/", 1)[-1]
                try:
                    name = route53.get_hosted_zone(Id=zone_id)["HostedZone"]["Name"]
                except ClientError as exc:
                    if error_code(exc) != "NoSuchHostedZone":
                        raise
                    raise ConfigError(
                        f"hosted zone {given} does not exist in this account",
                        fix="check hosted_zone_id (aws route53 list-hosted-zones), or drop it "
                        "to find the zone by the domain's name",
                    ) from exc
                if not (wanted == _fqdn(name) or wanted.endswith("." + _fqdn(name))):
                    raise ConfigError(
                        f"domain {domain!r} is not in hosted zone {given} ({name.rstrip('.')})",
                        fix="give the zone of the domain in hosted_zone_id, or fix domain=",
                    )
                return zone_id
            pages = route53.get_paginator("list_hosted_zones").paginate()
            zones = [z for page in pages for z in page.get("HostedZones", [])]
        matching = [
            z
            for z in zones
            if not z.get("Config", {}).get("PrivateZone")
            and (wanted == _fqdn(z["Name"]) or wanted.endswith("." + _fqdn(z["Name"])))
        ]
        if not matching:
            return None
        best = max(matching, key=lambda z: len(z["Name"]))
        return str(best["Id"]).rsplit("/", 1)[-1]

    def _records(self, zone_id: str) -> list[dict[str, Any]]:
        """The record sets named ``domain`` (read-only)."""
        assert self._settings.domain
        name = _fqdn(self._settings.domain)
        with aws_errors("reading the domain's DNS records", DeployError):
            found = self._clients.route53.list_resource_record_sets(
                HostedZoneId=zone_id, StartRecordName=name, MaxItems="10"
            )["ResourceRecordSets"]
        return [dict(r) for r in found if _fqdn(r.get("Name", "")) == name]

    def check(self) -> None:
        """Before anything is created: the zone (when given) exists and holds the domain, and
        the name has no record cloudship would have to overwrite."""
        zone_id = self.zone()
        if zone_id is None:
            return
        for record in self._records(zone_id):
            kind = record.get("Type")
            if kind == "CNAME" or (kind in ("A", "AAAA") and "AliasTarget" not in record):
                raise ConfigError(
                    f"{self._settings.domain} already has a {kind} record in hosted zone "
                    f"{zone_id} that is not an alias cloudship made",
                    fix="delete that record (cloudship then creates an alias to the load "
                    "balancer), or use another domain=",
                )

    def ensure(self, balancer: Mapping[str, Any]) -> bool:
        """Alias records for ``domain`` to ``balancer``; True when one had to be written."""
        zone_id = self.zone()
        if zone_id is None:
            return False
        target = {
            "HostedZoneId": str(balancer["CanonicalHostedZoneId"]),
            "DNSName": _fqdn(str(balancer["DNSName"])),
            "EvaluateTargetHealth": True,
        }
        have = {r.get("Type"): r.get("AliasTarget") for r in self._records(zone_id)}
        changes = [
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": _fqdn(str(self._settings.domain)),
                    "Type": kind,
                    "AliasTarget": target,
                },
            }
            for kind in record_types(balancer)
            if not _same_alias(have.get(kind), target)
        ]
        if not changes:
            return False
        with aws_errors(f"pointing {self._settings.domain} at the load balancer", DeployError):
            self._clients.route53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Comment": "cloudship", "Changes": changes},
            )
        return True

    def remove(self, balancer: Mapping[str, Any]) -> None:
        """Delete ``domain``'s alias records that point at ``balancer`` (those cloudship made;
        a DELETE must repeat the record exactly, so it is sent as read)."""
        zone_id = self.zone()
        if zone_id is None:
            return
        dns_name = _fqdn(str(balancer.get("DNSName", "")))
        ours = [
            r
            for r in self._records(zone_id)
            if r.get("Type") in ("A", "AAAA")
            and _fqdn(str(r.get("AliasTarget", {}).get("DNSName", ""))) == dns_name
        ]
        if not ours:
            return
        with aws_errors(f"removing the DNS records of {self._settings.domain}", DeployError):
            self._clients.route53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={
                    "Comment": "cloudship destroy",
                    "Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in ours],
                },
            )


def _same_alias(have: Mapping[str, Any] | None, want: Mapping[str, Any]) -> bool:
    return (
        have is not None
        and str(have.get("HostedZoneId")) == want["HostedZoneId"]
        and _fqdn(str(have.get("DNSName", ""))) == want["DNSName"]
        and bool(have.get("EvaluateTargetHealth")) == want["EvaluateTargetHealth"]
    )
