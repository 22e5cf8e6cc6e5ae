"""The load-balanced web service: one internet-facing ALB per cluster, a target group and a
listener rule per service, security groups chained ALB → tasks.

Shape (what AWS Copilot's Load Balanced Web Service builds, minus CloudFormation):

- ALB ``cloudship-<cluster>`` (or the one named by ``load_balancer``), internet-facing, with
  its own security group ``cloudship-alb-<cluster>`` open on 80 (and 443 with a certificate).
- HTTP listener on 80; with ``certificate_arn`` an HTTPS listener on 443 and 80 redirects to it
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html).
  A listener's default action answers 404: only a service's rule forwards.
- A rule per service: ``host-header`` = ``domain`` and/or ``path-pattern`` = ``path``; with
  neither, the service takes ``/*`` at the lowest priority.
- An ``ip`` target group per service (Fargate tasks register by IP,
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb.html) whose health check is
  ``health_path``, with a 30 s deregistration delay instead of the 300 s default
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay).

Every ``ensure_*`` reads first and writes only what differs, so a re-ship that changes nothing
makes Describe calls only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cloudship.errors import ConfigError, DeployError
from cloudship_aws import network
from cloudship_aws.errors import aws_errors, error_code
from cloudship_aws.session import AwsClients
from cloudship_aws.settings import AwsSettings

HTTP, HTTPS = 80, 443
#: the catch-all rule goes last; ALB priorities run 1..50000
CATCH_ALL_PRIORITY = 50000
# Faster than the defaults (30 s interval, 5 healthy checks = 150 s before a task serves).
HEALTH_CHECK = {
    "HealthCheckIntervalSeconds": 10,
    "HealthCheckTimeoutSeconds": 5,
    "HealthyThresholdCount": 2,
    "UnhealthyThresholdCount": 3,
}
HEALTHY_CODES = "200-399"
_NAME_OK = re.compile(r"[^A-Za-z0-9-]+")
TAGS = [{"Key": "managed-by", "Value": "cloudship"}]


def elb_name(prefix: str, base: str) -> str:
    """An ELB name (≤ 32 letters, digits, hyphens; no leading/trailing hyphen), shortened
    with a hash when needed so distinct inputs stay distinct."""
    name = _NAME_OK.sub("-", f"{prefix}{base}").strip("-")
    if len(name) > 32:
        digest = hashlib.sha256(base.encode()).hexdigest()[:8]
        name = f"{name[:23].rstrip('-')}-{digest}"
    return name


def balancer_name(settings: AwsSettings) -> str:
    return elb_name("cloudship-", settings.cluster)


def target_group_name(settings: AwsSettings, service: str) -> str:
    # Target groups are regional, not per cluster: the cluster is part of the hash.
    digest = hashlib.sha256(f"{settings.cluster}/{service}".encode()).hexdigest()[:6]
    return elb_name("cs-", f"{service[:22]}-{digest}")


@dataclass(frozen=True)
class Ingress:
    """Where a public service is reached."""

    balancer_arn: str
    dns_name: str
    security_groups: tuple[str, ...]
    target_group_arn: str
    #: the DescribeLoadBalancers entry (DNS name, canonical hosted zone id, address type)
    balancer: Mapping[str, Any]


def _ports(settings: AwsSettings) -> list[int]:
    return [HTTP, HTTPS] if settings.certificate_arn else [HTTP]


def conditions(settings: AwsSettings) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if settings.domain:
        found.append({"Field": "host-header", "HostHeaderConfig": {"Values": [settings.domain]}})
    path = settings.path or ("/*" if not settings.domain else None)
    if path:
        found.append({"Field": "path-pattern", "PathPatternConfig": {"Values": [path]}})
    return found


def _condition_key(rule_conditions: list[dict[str, Any]]) -> set[tuple[str, tuple[str, ...]]]:
    key = set()
    for c in rule_conditions:
        field = str(c.get("Field"))
        config = c.get("HostHeaderConfig") or c.get("PathPatternConfig") or {}
        values = config.get("Values") or c.get("Values") or []
        key.add((field, tuple(sorted(values))))
    return key


def _forwards_to(rule: dict[str, Any]) -> set[str]:
    arns = set()
    for action in rule.get("Actions", []):
        if action.get("TargetGroupArn"):
            arns.add(action["TargetGroupArn"])
        for group in action.get("ForwardConfig", {}).get("TargetGroups", []):
            arns.add(group.get("TargetGroupArn"))
    return arns


class LoadBalancers:
    """Ensures the ALB, listeners, target group and rule of public services."""

    def __init__(self, settings: AwsSettings, clients: AwsClients) -> None:
        self._settings = settings
        self._clients = clients

    @property
    def _elbv2(self) -> Any:
        return self._clients.elbv2

    # -- checks, read-only ----------------------------------------------------------------

    def check_target_group(self, arn: str) -> dict[str, Any]:
        """An adopted target group: it exists, is of type ``ip`` (awsvpc tasks register by
        IP) and is attached to a load balancer (ECS refuses one that is not). Read-only."""
        with aws_errors("checking target_group_arn", ConfigError):
            try:
                (group,) = self._elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"]
            except ClientError as exc:
                if error_code(exc) != "TargetGroupNotFound":
                    raise
                raise ConfigError(
                    f"target_group_arn {arn} does not exist in this account and region",
                    fix="check the ARN (aws elbv2 describe-target-groups), or drop "
                    "target_group_arn to let cloudship create one",
                ) from exc
        if group.get("TargetType") != "ip":
            raise ConfigError(
                f"target group {group.get('TargetGroupName')} has target type "
                f"{group.get('TargetType')!r}; Fargate tasks register by IP",
                fix="create the target group with --target-type ip",
            )
        if not group.get("LoadBalancerArns"):
            raise ConfigError(
                f"target group {group.get('TargetGroupName')} is not attached to a load balancer",
                fix="add a listener or rule forwarding to it first, or drop target_group_arn",
            )
        return dict(group)

    def find_balancer(self) -> dict[str, Any] | None:
        """The ALB of the cluster (or the configured one), or None when it does not exist yet
        (``ConfigError`` when a configured one does not exist or is not an ALB)."""
        given = self._settings.load_balancer
        lookup = (
            {"LoadBalancerArns": [given]}
            if given and given.startswith("arn:")
            else {"Names": [given or balancer_name(self._settings)]}
        )
        with aws_errors("looking up the load balancer", DeployError):
            try:
                found = self._elbv2.describe_load_balancers(**lookup)["LoadBalancers"]
            except ClientError as exc:
                if error_code(exc) != "LoadBalancerNotFound":
                    raise
                found = []
        if not found:
            if given:
                raise ConfigError(
                    f"load balancer {given!r} does not exist in this account and region",
                    fix="check load_balancer (a name or ARN), or drop it to let cloudship "
                    "create one per cluster",
                )
            return None
        balancer = dict(found[0])
        if balancer.get("Type") != "application":
            raise ConfigError(
                f"load balancer {balancer.get('LoadBalancerName')} is a {balancer.get('Type')} "
                "load balancer; cloudship routes HTTP with an Application Load Balancer",
                fix="name an ALB in load_balancer, or pass target_group_arn for an NLB",
            )
        return balancer

    def check_rule(self, service: str) -> None:
        """Read-only, before anything is created: no other service's rule on the listener
        this service's rule would go on routes the same host/path (ALB would send the traffic
        to whichever rule has the lower priority)."""
        balancer = self.find_balancer()
        if balancer is None:
            return  # a new ALB has no rules yet
        port = HTTPS if self._settings.certificate_arn else HTTP
        with aws_errors("reading the load balancer's rules", DeployError):
            listeners = self._elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
                "Listeners"
            ]
            listener = next((li for li in listeners if int(li["Port"]) == port), None)
            if listener is None:
                return
            rules = [
                r
                for r in self._elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
                if not r.get("IsDefault")
            ]
            try:
                found = self._elbv2.describe_target_groups(
                    Names=[target_group_name(self._settings, service)]
                )["TargetGroups"]
            except ClientError as exc:
                if error_code(exc) != "TargetGroupNotFound":
                    raise
                found = []
        ours = found[0]["TargetGroupArn"] if found else None
        self._refuse_clash(rules, ours)

    def _refuse_clash(self, rules: list[dict[str, Any]], ours: str | None) -> None:
        wanted = conditions(self._settings)
        key = _condition_key(wanted)
        for rule in rules:
            if ours is not None and ours in _forwards_to(rule):
                continue
            if _condition_key(rule.get("Conditions", [])) == key:
                raise ConfigError(
                    f"the load balancer already routes {self._describe(wanted)} to another service",
                    fix="give this service its own domain= or path= (e.g. path='/api/*')",
                )

    # -- ensuring -----------------------------------------------------------------------

    def ensure(
        self, service: str, port: int, health_path: str, subnets: tuple[str, ...], vpc_id: str
    ) -> Ingress:
        """Everything between the internet and ``service``'s tasks."""
        balancer = self.find_balancer()
        if balancer is None:
            balancer = self._create_balancer(subnets, vpc_id)
        elif balancer.get("VpcId") != vpc_id:
            raise ConfigError(
                f"load balancer {balancer.get('LoadBalancerName')} is in VPC "
                f"{balancer.get('VpcId')}, the tasks in {vpc_id}",
                fix="give subnets of the load balancer's VPC, or another load_balancer",
            )
        arn = str(balancer["LoadBalancerArn"])
        if not self._settings.load_balancer:
            # cloudship's own ALB: keep its group's ports in line with the certificate setting
            self._balancer_group(vpc_id)
        group = self._ensure_target_group(service, port, health_path, vpc_id)
        listener = self._ensure_listeners(arn)
        self._ensure_rule(listener, group, service)
        return Ingress(
            balancer_arn=arn,
            dns_name=str(balancer.get("DNSName", "")),
            security_groups=tuple(balancer.get("SecurityGroups", [])),
            target_group_arn=group,
            balancer=balancer,
        )

    def _balancer_group(self, vpc_id: str) -> str:
        wanted = {(p, src) for p in _ports(self._settings) for src in ("0.0.0.0/0", "::/0")}
        return network.ensure_security_group(
            self._clients.ec2,
            elb_name("cloudship-alb-", self._settings.cluster),
            f"cloudship load balancer of cluster {self._settings.cluster}",
            vpc_id,
            wanted,
        )

    def _create_balancer(self, subnets: tuple[str, ...], vpc_id: str) -> dict[str, Any]:
        group = self._balancer_group(vpc_id)
        subnet_ids = list(self._settings.load_balancer_subnets or subnets)
        with aws_errors("creating the load balancer", DeployError):
            created = self._elbv2.create_load_balancer(
                Name=balancer_name(self._settings),
                Subnets=subnet_ids,
                SecurityGroups=[group],
                Scheme="internet-facing",
                Type="application",
                IpAddressType="ipv4",
                Tags=TAGS,
            )["LoadBalancers"][0]
        return dict(created)

    def _ensure_target_group(self, service: str, port: int, health_path: str, vpc_id: str) -> str:
        name = target_group_name(self._settings, service)
        elbv2 = self._elbv2
        with aws_errors(f"ensuring target group {name}", DeployError):
            try:
                found = elbv2.describe_target_groups(Names=[name])["TargetGroups"]
            except ClientError as exc:
                if error_code(exc) != "TargetGroupNotFound":
                    raise
                found = []
            if found and (found[0].get("VpcId") != vpc_id or found[0].get("Port") != port):
                # port and VPC cannot change in place: a new group, the old one is replaced
                # by the rule below and removed by destroy
                raise ConfigError(
                    f"target group {name} exists for another VPC or port",
                    fix=f"destroy the service first (`cloudship destroy {service}`), or keep "
                    "the port and subnets it was shipped with",
                )
            if not found:
                arn = elbv2.create_target_group(
                    Name=name,
                    Protocol="HTTP",
                    Port=port,
                    VpcId=vpc_id,
                    TargetType="ip",
                    HealthCheckProtocol="HTTP",
                    HealthCheckPath=health_path,
                    Matcher={"HttpCode": HEALTHY_CODES},
                    Tags=TAGS,
                    **HEALTH_CHECK,
                )["TargetGroups"][0]["TargetGroupArn"]
            else:
                group = found[0]
                arn = group["TargetGroupArn"]
                if (
                    group.get("HealthCheckPath") != health_path
                    or group.get("Matcher", {}).get("HttpCode") != HEALTHY_CODES
                ):
                    elbv2.modify_target_group(
                        TargetGroupArn=arn,
                        HealthCheckPath=health_path,
                        Matcher={"HttpCode": HEALTHY_CODES},
                    )
            delay = str(self._settings.deregistration_delay)
            attributes = {
                a["Key"]: a.get("Value")
                for a in elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
            }
            if attributes.get("deregistration_delay.timeout_seconds") != delay:
                elbv2.modify_target_group_attributes(
                    TargetGroupArn=arn,
                    Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": delay}],
                )
        return str(arn)

    def _ensure_listeners(self, balancer_arn: str) -> str:
        """The listener service rules go on (HTTPS with a certificate, else HTTP)."""
        elbv2 = self._elbv2
        cert = self._settings.certificate_arn
        not_found = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}
        redirect = {
            "Type": "redirect",
            "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
        }
        with aws_errors("ensuring the load balancer's listeners", DeployError):
            listeners = {
                int(listener["Port"]): listener
                for listener in elbv2.describe_listeners(LoadBalancerArn=balancer_arn)["Listeners"]
            }
            http_default = redirect if cert else not_found
            http = listeners.get(HTTP)
            if http is None:
                http = elbv2.create_listener(
                    LoadBalancerArn=balancer_arn,
                    Protocol="HTTP",
                    Port=HTTP,
                    DefaultActions=[http_default],
                    Tags=TAGS,
                )["Listeners"][0]
            elif cert and not any(
                a.get("Type") == "redirect" for a in http.get("DefaultActions", [])
            ):
                elbv2.modify_listener(ListenerArn=http["ListenerArn"], DefaultActions=[redirect])
            if not cert:
                return str(http["ListenerArn"])
            https = listeners.get(HTTPS)
            if https is None:
                https = elbv2.create_listener(
                    LoadBalancerArn=balancer_arn,
                    Protocol="HTTPS",
                    Port=HTTPS,
                    Certificates=[{"CertificateArn": cert}],
                    SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                    DefaultActions=[not_found],
                    Tags=TAGS,
                )["Listeners"][0]
            elif cert not in [c.get("CertificateArn") for c in https.get("Certificates", [])]:
                elbv2.modify_listener(
                    ListenerArn=https["ListenerArn"], Certificates=[{"CertificateArn": cert}]
                )
        return str(https["ListenerArn"])

    def _ensure_rule(self, listener_arn: str, target_group: str, service: str) -> None:
        wanted = conditions(self._settings)
        key = _condition_key(wanted)
        forward = [{"Type": "forward", "TargetGroupArn": target_group}]
        elbv2 = self._elbv2
        with aws_errors(f"ensuring the listener rule of {service!r}", DeployError):
            rules = [
                r
                for r in elbv2.describe_rules(ListenerArn=listener_arn)["Rules"]
                if not r.get("IsDefault")
            ]
            ours = next((r for r in rules if target_group in _forwards_to(r)), None)
            self._refuse_clash(rules, target_group)
            if ours is not None:
                if _condition_key(ours.get("Conditions", [])) != key:
                    elbv2.modify_rule(RuleArn=ours["RuleArn"], Conditions=wanted, Actions=forward)
                return
            elbv2.create_rule(
                ListenerArn=listener_arn,
                Conditions=wanted,
                Priority=self._priority(rules),
                Actions=forward,
                Tags=TAGS,
            )

    def _priority(self, rules: list[dict[str, Any]]) -> int:
        if not self._settings.domain and not self._settings.path:
            return CATCH_ALL_PRIORITY
        taken = {int(r["Priority"]) for r in rules if str(r.get("Priority", "")).isdigit()}
        return next(n for n in range(1, CATCH_ALL_PRIORITY) if n not in taken)

    @staticmethod
    def _describe(wanted: list[dict[str, Any]]) -> str:
        parts = []
        for c in wanted:
            config = c.get("HostHeaderConfig") or c.get("PathPatternConfig") or {}
            parts.append(f"{c['Field']} {', '.join(config.get('Values', []))}")
        return " and ".join(parts)

    # -- reading and removing ---------------------------------------------------------------

    def remove(self, service: str) -> None:
        """Delete ``service``'s rule and target group; the ALB stays for the cluster's other
        services (a cluster's ALB costs while it exists: see docs/aws.md)."""
        name = target_group_name(self._settings, service)
        elbv2 = self._elbv2
        with aws_errors(f"removing the load balancer rule of {service!r}", DeployError):
            try:
                (group,) = elbv2.describe_target_groups(Names=[name])["TargetGroups"]
            except ClientError as exc:
                if error_code(exc) != "TargetGroupNotFound":
                    raise
                return
            arn = group["TargetGroupArn"]
            for balancer_arn in group.get("LoadBalancerArns", []):
                for listener in elbv2.describe_listeners(LoadBalancerArn=balancer_arn)["Listeners"]:
                    for rule in elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
                        if arn in _forwards_to(rule) and not rule.get("IsDefault"):
                            elbv2.delete_rule(RuleArn=rule["RuleArn"])
            try:
                elbv2.delete_target_group(TargetGroupArn=arn)
            except ClientError as exc:
                # still referenced while the deleted service drains: harmless, like its
                # security group
                if error_code(exc) != "ResourceInUse":
                    raise
