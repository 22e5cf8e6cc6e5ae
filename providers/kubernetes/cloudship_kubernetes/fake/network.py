"""Services on the fake: cluster IPs, node ports, and load balancers on loopback addresses.

A real cloud's load-balancer controller provisions an address for each ``type: LoadBalancer``
Service and reports it in ``status.loadBalancer.ingress`` a while later
(https://kubernetes.io/docs/concepts/services-networking/service/#loadbalancer); until then
``kubectl get svc`` shows ``<pending>``. Here each one gets its own loopback address
(127.X.Y.Z: all of 127.0.0.0/8 reaches this host) listening on the Service's port, which
forwards each connection to a Ready pod that the selector matches (round robin), on the
``targetPort`` — what kube-proxy does with the Service's endpoints. ClusterIP Services get
an address from 10.96.0.0/12 that, as in a real cluster, only pods could reach.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import socket
import threading
from typing import Any

from cloudship_kubernetes.fake.controllers import pod_ready
from cloudship_kubernetes.fake.store import Obj, Store

#: seconds before a new LoadBalancer gets its address (clouds take tens of seconds; kept short)
PROVISION_DELAY = 0.5


class _Proxy:
    def __init__(self, address: str, port: int, backends: Any) -> None:
        self.address, self.port, self.backends = address, port, backends
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((address, port))
        self.listener.listen(64)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        target = self.backends()
        if target is None:  # no ready endpoint: the connection is refused, as kube-proxy does
            client.close()
            return
        try:
            upstream = socket.create_connection(target, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def pump(source: socket.socket, sink: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join(timeout=30)
        client.close()
        upstream.close()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.listener.close()


class Network:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._proxies: dict[str, _Proxy] = {}
        self._counter = itertools.count(1)
        self._octet = random.randint(100, 250)
        self._cluster_ips = itertools.count(10)
        self._node_ports = itertools.count(random.randint(30000, 32000))
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fake-k8s-network")

    def start(self) -> None:
        self._thread.start()

    def admit(self, service: Obj, old: Obj | None) -> None:
        """Defaults the API server fills in on create (and keeps on update)."""
        spec = service.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if old is not None:
            spec.setdefault("clusterIP", old["spec"].get("clusterIP"))
        if not spec.get("clusterIP"):
            n = next(self._cluster_ips)
            spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 1}"
        spec["clusterIPs"] = [spec["clusterIP"]]
        old_ports = {p.get("port"): p for p in ((old or {}).get("spec") or {}).get("ports") or []}
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                port["nodePort"] = old_ports.get(port.get("port"), {}).get("nodePort") or next(
                    self._node_ports
                )

    def _backend(
        self, namespace: str, selector: dict[str, str], target: Any
    ) -> tuple[str, int] | None:
        wanted = ",".join(f"{k}={v}" for k, v in selector.items())
        pods = [
            p
            for p in self.store.list(self.store.kind("pods"), namespace, wanted)
            if pod_ready(p) and (p.get("status") or {}).get("podIP")
        ]
        if not pods or not selector:
            return None
        pod = pods[next(self._turn) % len(pods)]
        port = target
        if isinstance(target, str):
            containers = pod["spec"]["containers"]
            port = next(
                (
                    p["containerPort"]
                    for c in containers
                    for p in c.get("ports") or []
                    if p.get("name") == target
                ),
                None,
            )
        return (pod["status"]["podIP"], int(port)) if port else None

    def _loop(self) -> None:
        kind = self.store.kind("services")
        while not self._stop.wait(PROVISION_DELAY):
            seen = set()
            for service in self.store.list(kind, None):
                meta, spec = service["metadata"], service["spec"]
                key = f"{meta['namespace']}/{meta['name']}"
                if spec.get("type") != "LoadBalancer":
                    continue
                seen.add(key)
                if key in self._proxies:
                    continue
                port = spec["ports"][0]
                selector, target = spec.get("selector") or {}, port.get("targetPort")
                namespace = meta["namespace"]
                proxy = None
                for _ in range(20):
                    n = next(self._counter)
                    address = f"127.{self._octet}.{n // 250}.{n % 250 + 1}"
                    try:
                        proxy = _Proxy(
                            address,
                            port["port"],
                            lambda ns=namespace, s=selector, t=target: self._backend(ns, s, t),
                        )
                        break
                    except OSError:
                        continue
                if proxy is None:
                    continue  # stays <pending>, as a cloud out of addresses leaves it
                self._proxies[key] = proxy

                def publish(obj: Obj, ip: str = proxy.address) -> None:
                    obj.setdefault("status", {})["loadBalancer"] = {
                        "ingress": [{"ip": ip, "ipMode": "VIP"}]
                    }

                self.store.update(kind, meta["namespace"], meta["name"], publish)
            for key in set(self._proxies) - seen:
                self._proxies.pop(key).close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for proxy in self._proxies.values():
            proxy.close()
        self._proxies.clear()
