"""What starting cloudship costs a fresh interpreter: ``import cloudship``, ``from cloudship
import ship``, ``cloudship --help``, side by side with ``python -c pass`` and ``import docker``.

Each command runs in its own fresh subprocess, N times, interleaved (one of each, then the next
round), with the interpreter running this script (``cloudship --help`` runs the console script
beside it). Reported per command: the median and the fastest wall time, and the fastest CPU time
(user + system, from ``os.wait4``). On a shared machine the wall times swing with the load;
the CPU time much less, so both are shown. Targets are on the wall time: the median when the
machine is quiet, the fastest run otherwise (say which). A last subprocess reports which heavy
modules ``import cloudship`` pulled in (it should pull none).

The children run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed from their
environment), as for an installed wheel, whose ``.pyc`` files pip writes: with it set, as in
some CI and sandbox shells, every run of an editable install compiles cloudship's source again.

    .venv/bin/python benchmarks/import_time.py [--runs 30] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HEAVY = ("docker", "boto3", "azure", "pydantic", "pydantic_settings", "httpx", "rich", "typer")
PROBE = (
    f"import sys, json, cloudship; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
)


#: bytecode caching on: what an installed package has (see the module docstring)
CHILD_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


@dataclass
class Contender:
    label: str
    argv: list[str]
    #: milliseconds of wall time, whole process (None: informational)
    target_ms: float | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def run(self) -> None:
        started = time.perf_counter()
        child = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, env=CHILD_ENV)
        _, status, usage = os.wait4(child.pid, 0)
        self.wall.append(time.perf_counter() - started)
        self.cpu.append(usage.ru_utime + usage.ru_stime)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{self.label}: exited with {status}")


def contenders() -> list[Contender]:
    python = sys.executable
    script = Path(python).with_name("cloudship")
    help_argv = [str(script), "--help"] if script.exists() else [python, "-m", "cloudship.cli"]
    return [
        Contender("python -c pass (baseline)", [python, "-c", "pass"]),
        Contender("import cloudship", [python, "-c", "import cloudship"], 80.0),
        Contender(
            "from cloudship import ship", [python, "-c", "from cloudship import ship"], 250.0
        ),
        Contender("cloudship --help", help_argv, 300.0),
        Contender("import docker", [python, "-c", "import docker"]),
    ]


def heavy_modules() -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, env=CHILD_ENV
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def report(measured: list[Contender], loaded: list[str]) -> bool:
    """Print the table; True when every target is met by the median (or, on a loaded machine,
    by the fastest run: the line says which)."""
    load = os.getloadavg()[0]
    quiet = load < (os.cpu_count() or 1)
    header = f"{'command':28} {'median ms':>10} {'fastest ms':>11} {'cpu ms':>8}  target"
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs ({'quiet' if quiet else 'loaded'})")
    print(header + "\n" + "-" * len(header))
    passed = True
    for one in measured:
        median, fastest = statistics.median(one.wall) * 1000, min(one.wall) * 1000
        cpu = min(one.cpu) * 1000
        verdict = ""
        if one.target_ms is not None:
            judged = median if quiet else fastest
            ok = judged <= one.target_ms
            passed &= ok
            basis = "median" if quiet else "fastest"
            verdict = f"≤ {one.target_ms:.0f} ms ({basis}): {'pass' if ok else 'FAIL'}"
        print(f"{one.label:28} {median:10.1f} {fastest:11.1f} {cpu:8.1f}  {verdict}")
    print(
        "\nheavy modules loaded by import cloudship: "
        + (", ".join(loaded) if loaded else f"none (checked: {', '.join(HEAVY)})")
    )
    return passed


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="what starting cloudship costs, fresh")
    parser.add_argument("--runs", type=positive, default=30, help="subprocesses per command")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    version = sys.version.split()[0]
    print(f"{sys.executable} (python {version}), {args.runs} interleaved runs each")
    measured = contenders()
    for one in measured:  # warm the page cache, untimed
        one.run()
        one.wall.clear()
        one.cpu.clear()
    for _ in range(args.runs):
        for one in measured:
            one.run()
    passed = report(measured, heavy_modules())
    return 0 if passed or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
