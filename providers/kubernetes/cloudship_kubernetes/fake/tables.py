"""Server-side printing: the ``Table`` kubectl asks for (``Accept: ...;as=Table``).

Columns as the API server prints them (pkg/printers/internalversion/printers.go);
https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cloudship_kubernetes.fake.store import Kind, Obj


def age(obj: Obj) -> str:
    """kubectl's short human duration (apimachinery duration.HumanDuration)."""
    text = obj["metadata"].get("creationTimestamp")
    if not text:
        return "<unknown>"
    seconds = int(
        (datetime.now(UTC) - datetime.fromisoformat(text.replace("Z", "+00:00"))).total_seconds()
    )
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h" if hours < 48 else f"{hours // 24}d"


def _pod_status(pod: Obj) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            return str(state["waiting"]["reason"])
        if state.get("terminated", {}).get("reason"):
            return str(state["terminated"]["reason"])
    return str(status.get("phase") or "Pending")


def _pod_row(pod: Obj) -> list[Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    ready = sum(bool(c.get("ready")) for c in statuses)
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    total = len(pod["spec"].get("containers") or [])
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        _pod_status(pod),
        restarts,
        age(pod),
        (pod.get("status") or {}).get("podIP") or "<none>",
        pod["spec"].get("nodeName") or "<none>",
    ]


def _deployment_row(d: Obj) -> list[Any]:
    s = d.get("status") or {}
    return [
        d["metadata"]["name"],
        f"{s.get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}",
        s.get("updatedReplicas", 0),
        s.get("availableReplicas", 0),
        age(d),
    ]


def _rs_row(rs: Obj) -> list[Any]:
    s = rs.get("status") or {}
    return [
        rs["metadata"]["name"],
        rs["spec"].get("replicas", 1),
        s.get("replicas", 0),
        s.get("readyReplicas", 0),
        age(rs),
    ]


def _service_row(svc: Obj) -> list[Any]:
    spec = svc["spec"]
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or (
        "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    )
    ports = ",".join(
        f"{p['port']}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
        if p.get("nodePort")
        else f"{p['port']}/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    return [
        svc["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        external,
        ports,
        age(svc),
    ]


def _secret_row(secret: Obj) -> list[Any]:
    return [
        secret["metadata"]["name"],
        secret.get("type", "Opaque"),
        len(secret.get("data") or {}),
        age(secret),
    ]


def _hpa_targets(hpa: Obj) -> str:
    """kubectl's TARGETS column: ``cpu: 42%/70%``, ``<unknown>`` while no metric came."""
    aims = [
        m["resource"]["target"].get("averageUtilization")
        for m in hpa["spec"].get("metrics") or []
        if m.get("type") == "Resource"
    ]
    found = [
        m["resource"]["current"].get("averageUtilization")
        for m in (hpa.get("status") or {}).get("currentMetrics") or []
        if m.get("type") == "Resource"
    ]
    current = f"{found[0]}%" if found else "<unknown>"
    return f"cpu: {current}/{aims[0]}%" if aims else "<none>"


def _hpa_row(hpa: Obj) -> list[Any]:
    spec = hpa["spec"]
    ref = spec["scaleTargetRef"]
    return [
        hpa["metadata"]["name"],
        f"{ref['kind']}/{ref['name']}",
        _hpa_targets(hpa),
        spec.get("minReplicas", 1),
        spec["maxReplicas"],
        (hpa.get("status") or {}).get("currentReplicas", 0),
        age(hpa),
    ]


def _ingress_row(ingress: Obj) -> list[Any]:
    spec = ingress.get("spec") or {}
    hosts = [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
    found = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [
        ingress["metadata"]["name"],
        spec.get("ingressClassName") or "<none>",
        ",".join(hosts) or "*",
        ",".join(a.get("ip") or a.get("hostname") or "" for a in found),
        "80, 443" if spec.get("tls") else "80",
        age(ingress),
    ]


def _event_row(event: Obj) -> list[Any]:
    involved = event.get("involvedObject") or {}
    return [
        age(event),
        event.get("type", "Normal"),
        event.get("reason", ""),
        f"{involved.get('kind', '').lower()}/{involved.get('name', '')}",
        event.get("message", ""),
    ]


def _namespace_row(ns: Obj) -> list[Any]:
    return [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", "Active"), age(ns)]


_COLUMNS: dict[str, tuple[list[tuple[str, int]], Callable[[Obj], list[Any]]]] = {
    "Pod": (
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
        ],
        _pod_row,
    ),
    "Deployment": (
        [("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0), ("Age", 0)],
        _deployment_row,
    ),
    "ReplicaSet": (
        [("Name", 0), ("Desired", 0), ("Current", 0), ("Ready", 0), ("Age", 0)],
        _rs_row,
    ),
    "Service": (
        [
            ("Name", 0),
            ("Type", 0),
            ("Cluster-IP", 0),
            ("External-IP", 0),
            ("Port(s)", 0),
            ("Age", 0),
        ],
        _service_row,
    ),
    "Secret": ([("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)], _secret_row),
    "HorizontalPodAutoscaler": (
        [
            ("Name", 0),
            ("Reference", 0),
            ("Targets", 0),
            ("MinPods", 0),
            ("MaxPods", 0),
            ("Replicas", 0),
            ("Age", 0),
        ],
        _hpa_row,
    ),
    "Ingress": (
        [("Name", 0), ("Class", 0), ("Hosts", 0), ("Address", 0), ("Ports", 0), ("Age", 0)],
        _ingress_row,
    ),
    "Event": (
        [("Last Seen", 0), ("Type", 0), ("Reason", 0), ("Object", 0), ("Message", 0)],
        _event_row,
    ),
    "Namespace": ([("Name", 0), ("Status", 0), ("Age", 0)], _namespace_row),
}


def table(kind: Kind, items: list[Obj], resource_version: str) -> Obj:
    columns, row = _COLUMNS[kind.kind]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": "integer"
                if name
                in ("Restarts", "Data", "Desired", "Current", "MinPods", "MaxPods", "Replicas")
                else "string",
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": priority,
            }
            for name, priority in columns
        ],
        "rows": [
            {
                "cells": row(item),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": item["metadata"],
                },
            }
            for item in items
        ],
    }
