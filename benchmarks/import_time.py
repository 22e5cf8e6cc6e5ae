"""What ``import cloudship`` costs a fresh interpreter, side by side with ``import docker``.

Each statement runs in its own fresh subprocess, N times, interleaved (``pass``, ``import
cloudship``, ``import docker``, then the next round), with the interpreter running this script.
The import cost is the median wall time minus the median of ``python -c "pass"``. A last
subprocess reports which heavy modules ``import cloudship`` pulled in (it should pull none:
everything heavy loads on first use).

    .venv/bin/python benchmarks/import_time.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

TARGET_MS = 80.0
STATEMENTS = {
    "pass (baseline)": "pass",
    "import cloudship": "import cloudship",
    "import docker": "import docker",
    # Informational: the lazy names move the cost to first use; this is that first use.
    "from cloudship import ship": "from cloudship import ship",
}
HEAVY = ("docker", "boto3", "azure", "pydantic", "pydantic_settings", "httpx", "rich", "typer")
PROBE = (
    f"import sys, json, cloudship; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
)


def wall_time(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    return time.perf_counter() - started


def measure(runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {label: [] for label in STATEMENTS}
    for statement in STATEMENTS.values():  # warm the page cache, untimed
        wall_time(statement)
    for _ in range(runs):
        for label, statement in STATEMENTS.items():
            times[label].append(wall_time(statement))
    return times


def heavy_modules() -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def report(times: dict[str, list[float]], loaded: list[str]) -> bool:
    """Print the table; True when the cloudship import cost is under the target."""
    medians = {label: statistics.median(values) * 1000 for label, values in times.items()}
    baseline = medians["pass (baseline)"]
    header = f"{'statement':28} {'median ms':>10} {'cost ms':>8} {'x baseline':>11}"
    print(header + "\n" + "-" * len(header))
    for label, median in medians.items():
        print(f"{label:28} {median:10.1f} {median - baseline:8.1f} {median / baseline:10.2f}x")
    cost = medians["import cloudship"] - baseline
    docker_cost = medians["import docker"] - baseline
    passed = cost < TARGET_MS
    print(
        f"\nimport cloudship costs {cost:.1f} ms (target < {TARGET_MS:.0f} ms: "
        f"{'pass' if passed else 'FAIL'}); import docker costs {docker_cost:.1f} ms "
        f"(cloudship/docker cost ratio {cost / docker_cost:.2f}x)"
    )
    print(
        "heavy modules loaded by import cloudship: "
        + (", ".join(loaded) if loaded else f"none (checked: {', '.join(HEAVY)})")
    )
    return passed


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="import cloudship vs import docker, fresh")
    parser.add_argument("--runs", type=positive, default=30, help="subprocesses per statement")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    version = sys.version.split()[0]
    print(f"{sys.executable} (python {version}), {args.runs} interleaved runs each\n")
    passed = report(measure(args.runs), heavy_modules())
    return 0 if passed or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
