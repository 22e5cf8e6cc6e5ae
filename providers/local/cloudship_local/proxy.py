"""The reverse proxy in front of a local service's revisions: switches without downtime.

Each service gets one proxy container that holds the service's stable host port for good; the
revisions run behind it on the ``cloudship`` Docker network and are never published on that
port. A deploy proves the new revision on a loopback port, then points the proxy at *that same
container* (no restart) with a graceful reload, the way Kamal's kamal-proxy does.

Why nginx (Debian's ``nginx-light``) and not kamal-proxy, Traefik or a proxy of our own:

- ``nginx -s reload`` is a documented graceful reconfiguration: the master keeps the listening
  socket, starts workers with the new configuration and lets the old workers finish the
  requests they hold (https://nginx.org/en/docs/control.html#reconfiguration). So the stable
  port never refuses a connection and no request in flight is cut.
- It is installable here without Docker Hub: the image is built ``FROM debian:bookworm-slim``
  with ``apt-get install nginx-light``, and Debian's package archive is reachable where Docker
  Hub is not (``scripts/dev-env`` builds a ``debian:bookworm-slim`` stand-in when it must).
  kamal-proxy and Traefik are only distributed as Docker Hub images or GitHub release binaries.
- Hand-rolling a proxy would mean re-solving keep-alive, WebSocket upgrades, request bodies and
  graceful draining, which nginx has done for twenty years.

The proxy's configuration file is also the service's state: its first line records which
revision serves and which revisions have passed their health gate (``proven``). A new proxy
gets its first one with ``put_archive`` before it starts; a running one is switched by one
``exec`` inside the container that writes the next file, tests it, renames it over the old one
(``rename(2)``: atomic) and reloads, so a killed ship leaves either the old or the new
configuration, never half of one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cloudship.engine import Engine
from cloudship.errors import DeployError
from cloudship.events import EventSink, Notice, ignore

if TYPE_CHECKING:
    from docker.models.containers import Container

#: bump the suffix when the Dockerfile below changes
PROXY_IMAGE = "cloudship-proxy:nginx-1"
PROXY_BASE = "debian:bookworm-slim"
NETWORK = "cloudship"
#: the port nginx listens on inside the proxy container
LISTEN = 80
#: the header every proxied answer carries, so a switch can be confirmed from outside
REVISION_HEADER = "X-Cloudship-Revision"
CONF_DIR = "/etc/nginx"
CONF = f"{CONF_DIR}/nginx.conf"
_STATE_MARK = "# cloudship-proxy "
#: the file whose existence makes a proxy serve its candidate (see ProxyState.candidate)
_FLAG = f"{CONF_DIR}/cloudship-serve-r"
#: how long old nginx workers may keep connections (e.g. WebSockets) after a switch
DRAIN_SECONDS = 10
#: nginx worker processes per configuration (``worker_processes``); the drain wait counts them
WORKERS = 1
#: what a script run by :func:`_exec` prints last when every step of it succeeded
_DONE = "cloudship-exec-ok"

DOCKERFILE = f"""\
FROM {PROXY_BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \\
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/*
LABEL org.cloudship.proxy=nginx
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
"""


@dataclass(frozen=True)
class Candidate:
    """A revision under its health gate that the proxy is armed to serve."""

    active: str
    revision: int
    port: int


def flag(revision: int) -> str:
    """The file whose existence makes an armed proxy serve candidate ``revision``."""
    return f"{_FLAG}{revision}"


@dataclass(frozen=True)
class ProxyState:
    """What the proxy serves: the active revision container and the revisions that passed
    their health gate (and may be rolled back to). ``active`` is empty for a first deploy's
    proxy, which answers 503 until its candidate serves.

    A deploy *arms* the proxy while the new revision is still under its gate: a graceful
    reload to a configuration that serves ``active`` until :func:`flag` of the candidate
    exists and the candidate from then on, checked on every request (one ``stat``). When
    the gate passes, creating that file switches every worker at once. The reload, and the
    100 ms nginx's master waits before its old workers stop accepting, happen during the
    gate instead of after it."""

    active: str
    revision: int
    port: int
    proven: frozenset[int] = field(default_factory=frozenset)
    candidate: Candidate | None = None

    def to(self, container: str, revision: int, port: int) -> ProxyState:
        return ProxyState(container, revision, port, self.proven | {revision})

    def armed(self, container: str, revision: int, port: int) -> ProxyState:
        return dataclasses.replace(self, candidate=Candidate(container, revision, port))

    def promoted(self) -> ProxyState:
        """The state once the candidate serves (it passed its gate)."""
        c = self.candidate
        return self.to(c.active, c.revision, c.port) if c else self

    def disarmed(self) -> ProxyState:
        return dataclasses.replace(self, candidate=None)


def render(state: ProxyState) -> str:
    """The whole nginx.conf for ``state``; its first line is the state itself."""
    mark = json.dumps(
        {
            "active": state.active,
            "revision": state.revision,
            "port": state.port,
            "proven": sorted(state.proven),
            **({"candidate": dataclasses.asdict(state.candidate)} if state.candidate else {}),
        },
        separators=(",", ":"),
    )
    c = state.candidate
    # Server-level `set` and `if` (nginx's rewrite module, evaluated per request) choose
    # the upstream: the active revision, or the candidate once its flag file exists.
    # `return` is one of the two things nginx documents as safe inside `if` in a location
    # (https://www.nginx.com/resources/wiki/start/topics/depth/ifisevil/).
    choose = "\n".join(
        [
            f"        set $cloudship_upstream http://{state.active}:{state.port};"
            if state.active
            else '        set $cloudship_upstream "";',
            f"        set $cloudship_revision r{state.revision};"
            if state.active
            else '        set $cloudship_revision "";',  # an empty header is not sent
            *(
                [
                    f"        if (-f {flag(c.revision)}) {{",
                    f"            set $cloudship_upstream http://{c.active}:{c.port};",
                    f"            set $cloudship_revision r{c.revision};",
                    "        }",
                ]
                if c
                else []
            ),
        ]
    )
    wait = "" if state.active else 'if ($cloudship_upstream = "") { return 503; }'
    # The upstream is named through a variable so nginx resolves it with Docker's DNS at
    # request time: the proxy starts even when the revision is down (e.g. after a reboot).
    return f"""{_STATE_MARK}{mark}
worker_processes {WORKERS};
worker_shutdown_timeout {DRAIN_SECONDS}s;
pid /run/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    resolver 127.0.0.11 valid=10s ipv6=off;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    server {{
        listen {LISTEN};
        client_max_body_size 0;
{choose}
        location / {{
            {wait}
            proxy_pass $cloudship_upstream;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            add_header {REVISION_HEADER} $cloudship_revision always;
        }}
    }}
}}
"""


def parse(text: str) -> ProxyState | None:
    """The state recorded in a configuration :func:`render` wrote; None for anything else."""
    first = text.split("\n", 1)[0]
    if not first.startswith(_STATE_MARK):
        return None
    try:
        raw = json.loads(first.removeprefix(_STATE_MARK))
        return ProxyState(
            active=str(raw["active"]),
            revision=int(raw["revision"]),
            port=int(raw["port"]),
            proven=frozenset(int(n) for n in raw.get("proven", [])),
            candidate=Candidate(**raw["candidate"]) if raw.get("candidate") else None,
        )
    except (ValueError, KeyError, TypeError):
        return None


def _tar(name: str, text: str) -> bytes:
    data = text.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ensure_image(engine: Engine, on_event: EventSink = ignore) -> None:
    """Build the proxy image once per engine (about 20 s: one ``apt-get install``)."""
    from docker.errors import APIError, ImageNotFound

    api = engine.client.api
    try:
        api.inspect_image(PROXY_IMAGE)
        return
    except ImageNotFound:
        pass
    on_event(Notice(message=f"building the local proxy image {PROXY_IMAGE} (once per engine)"))
    context = _tar("Dockerfile", DOCKERFILE)
    tail: list[str] = []
    try:
        for line in api.build(
            fileobj=io.BytesIO(context), custom_context=True, tag=PROXY_IMAGE, rm=True, decode=True
        ):
            if "error" in line:
                raise DeployError(
                    f"building the proxy image {PROXY_IMAGE} failed: {line['error'].strip()}",
                    fix=f"the build needs {PROXY_BASE} and Debian's package archive; "
                    "scripts/dev-env prepares both",
                )
            tail.extend(str(line.get("stream", "")).splitlines()[-3:])
    except APIError as exc:
        raise DeployError(
            f"building the proxy image {PROXY_IMAGE} was refused: {exc.explanation or exc}",
            fix=f"make {PROXY_BASE} available to the engine (scripts/dev-env builds a stand-in)",
        ) from exc


def ensure_network(engine: Engine) -> None:
    """The one user-defined network every cloudship proxy and revision joins (its DNS is what
    lets nginx reach a revision by container name). Created once, never removed: other
    projects' services may be on it."""
    from docker.errors import APIError

    api = engine.client.api
    if api.networks(names=[NETWORK]):
        return
    try:
        api.create_network(NETWORK, driver="bridge", labels={"org.cloudship.network": "true"})
    except APIError as exc:
        if exc.status_code != 409:  # created by a concurrent ship: fine
            raise


def read_state(container: Container) -> ProxyState | None:
    """The state in the proxy's configuration (works on a stopped container too)."""
    from docker.errors import NotFound

    try:
        stream, _ = container.get_archive(CONF)
    except NotFound:
        return None
    raw = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        text = member.read().decode() if member else ""
    state = parse(text)
    if state is not None and state.candidate is not None:
        # Armed: the candidate serves (it passed its gate) once its flag file exists.
        try:
            container.get_archive(flag(state.candidate.revision))
            state = state.promoted()
        except NotFound:
            state = state.disarmed()
    if state is not None and not state.active:
        return None  # a first deploy's proxy whose revision never passed its gate
    return state


def write_initial(container: Container, state: ProxyState) -> None:
    """The configuration of a proxy that was created but not started yet."""
    container.put_archive(CONF_DIR, _tar("nginx.conf", render(state)))


def serve_candidate(container: Container, revision: int) -> None:
    """Switch an armed proxy to its candidate ``revision``: create its (empty) flag file.
    Creating a file is atomic, and an empty one cannot be left half-written."""
    container.put_archive(CONF_DIR, _tar(flag(revision).rsplit("/", 1)[1], ""))


def forget_flags(container: Container) -> None:
    """Remove the flag files, once no worker runs an armed configuration any more (after
    :func:`apply` of an unarmed state and :func:`wait_drained`)."""
    ok, output = _exec(container, f"rm -f {_FLAG}* && echo {_DONE}")
    if not ok:
        raise DeployError(f"the proxy could not remove its flag files: {output}")


def _exec(container: Container, script: str, *args: str) -> tuple[bool, str]:
    """Run ``sh -c script`` in ``container``; True when it printed :data:`_DONE` last on
    stdout, and what else it printed.

    Two engine requests (create, start) where ``exec_run`` makes three: it inspects the exec
    afterwards for its exit code, which the marker replaces (a script ends with
    ``&& echo {_DONE}``, so the marker means every step before it succeeded)."""
    api = container.client.api
    created = api.exec_create(container.id, ["sh", "-c", script, "sh", *args])
    # Apart: the marker is the last line of stdout, and stderr (nginx's own notices) may
    # arrive before or after it.
    out, err = api.exec_start(created["Id"], demux=True)
    text = (out or b"").decode("utf-8", "replace").strip()
    errors = (err or b"").decode("utf-8", "replace").strip()
    lines = text.splitlines()
    if lines and lines[-1] == _DONE:
        return True, errors
    return False, "\n".join(part for part in (text, errors) if part)


#: how long :func:`apply` waits for the workers of the earlier configuration to stop accepting
SWITCH_SECONDS = 10
# The pids of the workers that accept now (not yet told to quit). Only a process whose
# command line *starts* with nginx's worker title counts, not this very sh.
_ACCEPTING = (
    'pids=""; for f in /proc/[0-9]*/cmdline; do c=$(tr "\\0" " " < "$f" 2>/dev/null); '
    'case "$c" in "nginx: worker process is"*) ;; "nginx: worker process"*) '
    'p=${f#/proc/}; pids="$pids ${p%/cmdline}";; esac; done'
)
# Loop until none of those pids is a worker that still accepts (gone, or shutting down).
_UNTIL_SWITCHED = (
    'i=0; while :; do busy=0; for p in $pids; do c=$(tr "\\0" " " < /proc/$p/cmdline '
    '2>/dev/null); case "$c" in "nginx: worker process is"*|"") ;; "nginx: worker process"*) '
    'busy=1;; esac; done; [ "$busy" = 0 ] && break; i=$((i+1)); '
    f'[ "$i" -ge {SWITCH_SECONDS * 50} ] && exit 1; sleep 0.02; done'
)


def apply(container: Container, state: ProxyState) -> None:
    """Switch a running proxy to ``state``: write, test, rename and reload in one exec (one
    engine round trip; the file and the running configuration never disagree for long), and
    return once every worker that ran before the reload has stopped accepting connections:
    from then on every new connection gets the new configuration. (nginx's master starts
    the new workers, sleeps 100 ms, and only then tells the old ones to quit, so neither the
    reload's return nor a first answer from a new worker means that; the old workers go on
    finishing the requests they hold, see :func:`wait_drained`.) The configuration is the
    script's argument ``$1``, so no quoting of it is needed.

    Why not ``put_archive`` and a SIGHUP through the engine's kill API (no exec at all): the
    engine extracts an archive by removing the old file and writing the new one as the
    request body arrives, so a ship killed mid-request could leave a truncated file whose
    first line already records the new state; ``mv`` inside the container is one
    ``rename(2)``. The exec also runs ``nginx -t`` on the file before it can take effect."""
    nxt = f"{CONF_DIR}/cloudship-next.conf"
    # A flag of this candidate's number can only be left by an attempt that never passed
    # its gate (one that did is proven, and the next revision has the next number).
    stale = f"rm -f {flag(state.candidate.revision)} && " if state.candidate else ""
    script = (
        f'printf "%s" "$1" > {nxt} && nginx -t -q -c {nxt} && {stale}mv {nxt} {CONF}'
        # Braces: each of the two is a list of commands, and the && chain must hold.
        f" && {{ {_ACCEPTING}; }} && nginx -s reload && {{ {_UNTIL_SWITCHED}; }} && echo {_DONE}"
    )
    ok, output = _exec(container, script, render(state))
    if not ok:
        raise DeployError(
            f"the proxy refused its new configuration, or its workers did not take it within "
            f"{SWITCH_SECONDS} s: {output}"
        )


def wait_drained(container: Container, *, seconds: float = DRAIN_SECONDS + 1) -> bool:
    """Wait until no nginx worker of an earlier configuration is left (they finish the
    requests they hold first); True when drained within ``seconds``. Call it once the new
    configuration answers (the new workers run).

    It counts workers rather than looking for those "shutting down", for the reason
    :func:`apply` gives: right after the new configuration answers an old worker may still
    look like any other. With :data:`WORKERS` per configuration, more than that many means
    an old one is left.

    One exec that polls inside the container every 20 ms, instead of one exec per poll from
    here (three engine requests each): the wait ends within 20 ms of the last old worker's
    exit. The loop has its own limit, so a ship killed while it runs leaves nothing behind
    but a loop that ends by itself."""
    # "[p]": the pattern must not match the command line of this very sh and grep.
    polls = max(1, int(seconds / 0.02))
    count = "$(grep -las 'nginx: worker [p]rocess' /proc/[0-9]*/cmdline | wc -l)"
    script = (
        f'i=0; while [ "{count}" -gt {WORKERS} ]; do '
        f'i=$((i+1)); [ "$i" -ge {polls} ] && exit 1; sleep 0.02; done; echo {_DONE}'
    )
    ok, _ = _exec(container, script)
    return ok


if __name__ == "__main__":  # scripts/dev-env: build the image ahead of the first ship
    ensure_image(Engine.shared(), lambda event: print(getattr(event, "message", event)))
