"""The Fargate size table: valid pairs pass, anything else names the valid values."""

from __future__ import annotations

import pytest

from cloudship.errors import ConfigError
from cloudship_aws.fargate import FARGATE_SIZES, TaskSize, task_size


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        (0.25, "512Mi", TaskSize(256, 512)),
        (0.25, "2Gi", TaskSize(256, 2048)),
        (0.5, "4Gi", TaskSize(512, 4096)),
        (1, "8Gi", TaskSize(1024, 8192)),
        (4, "30Gi", TaskSize(4096, 30720)),
        (8, "20Gi", TaskSize(8192, 20480)),
        (16, "120Gi", TaskSize(16384, 122880)),
    ],
)
def test_valid_pairs(cpu: float, memory: str, expected: TaskSize) -> None:
    assert task_size(cpu, memory) == expected


def test_defaults_are_the_smallest_valid_choice() -> None:
    assert task_size(None, None) == TaskSize(256, 512)
    assert task_size(2, None) == TaskSize(2048, 4096)
    assert task_size(None, "3Gi") == TaskSize(512, 3072)
    assert task_size(None, "0.5Gi") == TaskSize(256, 512)


def test_table_matches_the_documented_ranges() -> None:
    assert FARGATE_SIZES[512] == (1024, 2048, 3072, 4096)
    assert FARGATE_SIZES[8192][:2] == (16384, 20480)
    assert FARGATE_SIZES[16384][-1] == 120 * 1024


def test_memory_not_allowed_with_cpu_lists_the_valid_memory() -> None:
    with pytest.raises(ConfigError) as caught:
        task_size(0.25, "4Gi")
    text = str(caught.value)
    assert "'4Gi'" in text and "cpu=0.25" in text
    assert "512Mi, 1Gi, 2Gi" in text


def test_ranges_are_summarised() -> None:
    with pytest.raises(ConfigError, match="4Gi to 16Gi in 1Gi steps"):
        task_size(2, "5000Mi")


def test_unknown_cpu_lists_the_valid_cpus() -> None:
    with pytest.raises(ConfigError, match=r"0\.25, 0\.5, 1, 2, 4, 8, 16"):
        task_size(0.3, None)


def test_memory_no_cpu_offers() -> None:
    with pytest.raises(ConfigError, match="no task size with memory '100Mi'"):
        task_size(None, "100Mi")


def test_fractional_mib_is_refused() -> None:
    with pytest.raises(ConfigError, match="whole number of MiB"):
        task_size(0.25, "512.5Mi")
