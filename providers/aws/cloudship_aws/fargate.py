"""The Fargate task size table, checked before any AWS call.

Real ECS rejects an invalid cpu/memory pair only at ``register_task_definition`` ("Invalid
'cpu' setting for task") and moto accepts any pair, so cloudship checks the table itself.
Source: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html
(task CPU and memory; 8 and 16 vCPU need Linux platform version 1.4.0 or later).
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudship.errors import ConfigError
from cloudship.runtime import memory_bytes

GIB = 1024


def _steps(low_gib: int, high_gib: int, step_gib: int) -> tuple[int, ...]:
    return tuple(range(low_gib * GIB, high_gib * GIB + 1, step_gib * GIB))


#: cpu units (1024 = 1 vCPU) → valid memory in MiB
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: _steps(1, 4, 1),
    1024: _steps(2, 8, 1),
    2048: _steps(4, 16, 1),
    4096: _steps(8, 30, 1),
    8192: _steps(16, 60, 4),
    16384: _steps(32, 120, 8),
}


@dataclass(frozen=True)
class TaskSize:
    cpu: int
    memory_mib: int


def _vcpu(units: int) -> str:
    return f"{units / 1024:g}"


def _memory_text(mib: int) -> str:
    return f"{mib}Mi" if mib < GIB else f"{mib / GIB:g}Gi"


def _valid_cpus() -> str:
    return ", ".join(_vcpu(units) for units in FARGATE_SIZES)


def _valid_memory(units: int) -> str:
    values = FARGATE_SIZES[units]
    if len(values) <= 4:
        return ", ".join(_memory_text(v) for v in values)
    step = values[1] - values[0]
    return f"{_memory_text(values[0])} to {_memory_text(values[-1])} in {_memory_text(step)} steps"


def task_size(cpu: float | None, memory: str | None) -> TaskSize:
    """The Fargate size for ``cpu`` (vCPU) and ``memory`` (``"512Mi"``); ``ConfigError`` naming
    the valid values when the pair is not one Fargate offers.

    Missing values default to the smallest valid choice: no cpu and no memory → 0.25 vCPU with
    512 MiB; memory alone → the smallest cpu that allows it; cpu alone → its smallest memory.
    """
    mib: int | None = None
    if memory is not None:
        size = memory_bytes(memory)
        if size % (1024 * 1024):
            raise ConfigError(
                f"memory {memory!r} is not a whole number of MiB",
                fix="use a value from the Fargate table, e.g. '512Mi' or '2Gi'",
            )
        mib = size // (1024 * 1024)
    if cpu is None:
        if mib is None:
            return TaskSize(256, 512)
        for units, allowed in FARGATE_SIZES.items():
            if mib in allowed:
                return TaskSize(units, mib)
        raise ConfigError(
            f"Fargate has no task size with memory {memory!r}",
            fix="use 512Mi, 1Gi, 2Gi … 30Gi (whole GiB), or up to 120Gi with cpu=8/16; "
            "see docs/aws.md",
        )
    units = round(cpu * 1024)
    if units not in FARGATE_SIZES or abs(units - cpu * 1024) > 1e-6:
        raise ConfigError(
            f"Fargate has no task size with cpu={cpu:g} vCPU",
            fix=f"use one of cpu = {_valid_cpus()}",
        )
    if mib is None:
        return TaskSize(units, FARGATE_SIZES[units][0])
    if mib not in FARGATE_SIZES[units]:
        raise ConfigError(
            f"Fargate does not allow memory {memory!r} with cpu={cpu:g} vCPU",
            fix=f"with cpu={cpu:g} use memory {_valid_memory(units)}",
        )
    return TaskSize(units, mib)
