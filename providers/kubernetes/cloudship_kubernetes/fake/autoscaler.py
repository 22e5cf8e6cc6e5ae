"""The HorizontalPodAutoscaler controller, as the fake runs it.

Modelled on pkg/controller/podautoscaler/horizontal.go (``reconcileAutoscaler``) and
https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details:

- every ``sync_period`` (the controller manager's ``--horizontal-pod-autoscaler-sync-period``,
  15 s) each HPA reads its target's scale: replicas 0 with ``minReplicas`` above 0 disables
  scaling (ScalingActive False, ``ScalingDisabled``); replicas outside min..max are brought
  inside without reading a metric;
- otherwise it needs the CPU utilisation of the pods, from the resource metrics API
  (metrics-server). The fake cluster runs no metrics-server, so by default — as on a real
  cluster without one — ScalingActive is False with reason ``FailedGetResourceMetric``, a
  Warning event says so, and nothing is scaled. A test sets a utilisation with
  ``set_cpu_utilization`` (the average over the target's pods, percent of the request);
- desired = ceil(current * utilisation / target), unchanged within the 0.1 tolerance,
  clamped to min..max (ScalingLimited ``TooManyReplicas`` / ``TooFewReplicas``); scale-up
  limited as the default behaviour does (the larger of doubling and +4 pods per period),
  scale-down only to the highest recommendation of the last
  ``scaleDown.stabilizationWindowSeconds`` (default 300 s), so a drop does not flap;
- a rescale writes the Deployment's ``replicas`` (its scale), records ``SuccessfulRescale``
  and sets ``lastScaleTime``; status carries currentReplicas, desiredReplicas,
  currentMetrics and the AbleToScale / ScalingActive / ScalingLimited conditions.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from cloudship_kubernetes.fake.store import ApiError, Obj, Store, now

TOLERANCE = 0.1
DOWN_WINDOW = 300.0


class Autoscaler:
    def __init__(self, store: Store, record: Any, sync_period: float = 15.0) -> None:
        self.store, self.record, self.sync_period = store, record, sync_period
        self._utilization: dict[tuple[str, str], float] = {}
        self._last_sync: dict[str, float] = {}
        #: HPA uid → (time, recommendation) of the last window, for the scale-down rule
        self._recommendations: dict[str, list[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def set_cpu_utilization(self, namespace: str, deployment: str, percent: float | None) -> None:
        """What the resource metrics API reports for ``deployment``'s pods (None: no metrics)."""
        with self._lock:
            if percent is None:
                self._utilization.pop((namespace, deployment), None)
            else:
                self._utilization[(namespace, deployment)] = percent

    def tick(self) -> None:
        clock = time.monotonic()
        for hpa in self.store.list(self.store.kind("horizontalpodautoscalers"), None):
            uid = hpa["metadata"]["uid"]
            if clock - self._last_sync.get(uid, float("-inf")) < self.sync_period:
                continue
            self._last_sync[uid] = clock
            try:
                self.reconcile(hpa)
            except ApiError:
                continue  # the HPA or its target vanished mid-sync

    def _cpu_target(self, spec: Obj) -> int | None:
        for metric in spec.get("metrics") or []:
            resource = metric.get("resource") or {}
            target = resource.get("target") or {}
            if metric.get("type") == "Resource" and resource.get("name") == "cpu":
                value = target.get("averageUtilization")
                return int(value) if value is not None else None
        return None

    def reconcile(self, hpa: Obj) -> None:
        spec, meta = hpa["spec"], hpa["metadata"]
        namespace, ref = meta["namespace"], spec["scaleTargetRef"]
        low, high = spec.get("minReplicas", 1), spec["maxReplicas"]
        conditions: dict[str, tuple[str, str, str]] = {}
        metrics: list[Obj] = []
        target = self.store.find(self.store.kind("deployments"), namespace, ref["name"])
        if ref.get("kind") != "Deployment" or target is None:
            conditions["AbleToScale"] = (
                "False",
                "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: "
                f'deployments/scale.apps "{ref["name"]}" not found',
            )
            self._write(hpa, 0, 0, conditions, metrics, rescaled=False)
            self.record(hpa, "Warning", "FailedGetScale", conditions["AbleToScale"][2], "hpa")
            return
        conditions["AbleToScale"] = (
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        )
        current = int(target["spec"].get("replicas", 1))
        desired, reason = current, ""
        if current == 0 and low != 0:
            conditions["ScalingActive"] = (
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
        elif current > high:
            desired, reason = high, "Current number of replicas above Spec.MaxReplicas"
        elif current < low:
            desired, reason = low, "Current number of replicas below Spec.MinReplicas"
        else:
            found = self._from_metric(hpa, current, conditions)
            if found is None:
                return
            desired, reason, metrics = found
        conditions.setdefault(
            "ScalingLimited",
            ("False", "DesiredWithinRange", "the desired count is within the acceptable range"),
        )
        disabled = conditions.get("ScalingActive", ("", "", ""))[1] == "ScalingDisabled"
        rescaled = desired != current and not disabled
        if rescaled:

            def scale(obj: Obj) -> None:
                obj["spec"]["replicas"] = desired

            self.store.update(self.store.kind("deployments"), namespace, ref["name"], scale)
            conditions["AbleToScale"] = (
                "True",
                "SucceededRescale",
                f"the HPA controller was able to update the target scale to {desired}",
            )
            self.record(
                hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}", "hpa"
            )
        self._write(hpa, current, desired, conditions, metrics, rescaled=rescaled)

    def _from_metric(
        self, hpa: Obj, current: int, conditions: dict[str, tuple[str, str, str]]
    ) -> tuple[int, str, list[Obj]] | None:
        """(desired replicas, why, currentMetrics) from the CPU metric; None when there is
        none (the status and the Warning event are written then)."""
        spec, meta = hpa["spec"], hpa["metadata"]
        namespace, ref = meta["namespace"], spec["scaleTargetRef"]
        low, high = spec.get("minReplicas", 1), spec["maxReplicas"]
        with self._lock:
            usage = self._utilization.get((namespace, ref["name"]))
        aim = self._cpu_target(spec)
        if usage is None or aim is None:
            message = (
                "the HPA was unable to compute the replica count: failed to get cpu "
                "utilization: unable to get metrics for resource cpu: unable to fetch "
                "metrics from resource metrics API: the server could not find the "
                "requested resource (get pods.metrics.k8s.io)"
            )
            conditions["ScalingActive"] = ("False", "FailedGetResourceMetric", message)
            self._write(hpa, current, current, conditions, [], rescaled=False)
            self.record(hpa, "Warning", "FailedGetResourceMetric", message, "hpa")
            return None
        metrics = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": round(usage)}},
            }
        ]
        conditions["ScalingActive"] = (
            "True",
            "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count from cpu "
            "resource utilization (percentage of request)",
        )
        ratio = usage / aim
        wanted = current if abs(ratio - 1.0) <= TOLERANCE else math.ceil(current * ratio)
        desired = self._stabilised(meta["uid"], wanted, current, spec)
        desired = min(desired, max(current * 2, current + 4))  # default scale-up policy
        if desired > high:
            conditions["ScalingLimited"] = (
                "True",
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
            desired = high
        elif desired < low:
            conditions["ScalingLimited"] = (
                "True",
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
            desired = low
        direction = "above" if desired > current else "below"
        return (
            desired,
            f"cpu resource utilization (percentage of request) {direction} target",
            metrics,
        )

    def _stabilised(self, uid: str, wanted: int, current: int, spec: Obj) -> int:
        """Scale down only to the highest recommendation of the stabilisation window."""
        down = ((spec.get("behavior") or {}).get("scaleDown") or {}).get(
            "stabilizationWindowSeconds", DOWN_WINDOW
        )
        clock = time.monotonic()
        window = [
            (at, value) for at, value in self._recommendations.get(uid, []) if clock - at <= down
        ]
        window.append((clock, wanted))
        self._recommendations[uid] = window
        if wanted >= current:
            return wanted
        return min(current, max(value for _, value in window))

    def _write(
        self,
        hpa: Obj,
        current: int,
        desired: int,
        conditions: dict[str, tuple[str, str, str]],
        metrics: list[Obj],
        *,
        rescaled: bool,
    ) -> None:
        stamp = now()

        def change(obj: Obj) -> None:
            status = obj.setdefault("status", {})
            old = {c["type"]: c for c in status.get("conditions") or []}
            written = []
            for kind, (state, reason, message) in conditions.items():
                before = old.get(kind)
                moved = before is None or before.get("status") != state
                written.append(
                    {
                        "type": kind,
                        "status": state,
                        "reason": reason,
                        "message": message,
                        "lastTransitionTime": stamp
                        if moved or before is None
                        else before["lastTransitionTime"],
                    }
                )
            status.update(
                currentReplicas=current,
                desiredReplicas=desired,
                conditions=written,
                observedGeneration=obj["metadata"].get("generation", 1),
            )
            if metrics:
                status["currentMetrics"] = metrics
            else:
                status.pop("currentMetrics", None)
            if rescaled:
                status["lastScaleTime"] = stamp

        self.store.update(
            self.store.kind("horizontalpodautoscalers"),
            hpa["metadata"]["namespace"],
            hpa["metadata"]["name"],
            change,
        )
