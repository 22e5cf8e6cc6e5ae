"""The engine's build-stream reader, fed the lines the classic builder really emits."""

import pytest

from cloudship.engine import Engine
from cloudship.errors import BuildError
from cloudship.events import BuildFinished, BuildStep, Event

ID = "sha256:" + "b" * 64

STREAM = [
    {"stream": "Step 1/4 : FROM busybox:latest"},
    {"stream": "\n"},
    {"stream": " ---> 21ab4a1e5f7f\n"},
    {"stream": "Step 2/4 : COPY requirements.txt .\n"},
    {"stream": " ---> Using cache\n"},
    {"stream": " ---> 1234567890ab\n"},
    {"stream": "Step 3/4 : RUN pip install -r requirements.txt\n"},
    {"stream": " ---> Using cache\n ---> 2234567890ab\n"},
    {"stream": "Step 4/4 : COPY . .\n"},
    {"stream": " ---> 3234567890ab\n"},
    {"aux": {"ID": ID}},
    {"stream": "Successfully built 3234567890ab\n"},
]


def test_steps_and_cache_hits_reported() -> None:
    events: list[Event] = []
    result = Engine()._read_build(iter(STREAM), 0.0, events.append)
    steps = [e for e in events if isinstance(e, BuildStep)]
    assert [(s.step, s.cached) for s in steps] == [(1, True), (2, True), (3, True), (4, False)]
    assert steps[2].instruction == "RUN pip install -r requirements.txt"
    assert (result.image_id, result.steps, result.cache_hits) == (ID, 4, 3)
    assert isinstance(events[-1], BuildFinished)


def test_error_line_raises_with_tail() -> None:
    stream = [
        *STREAM[:7],
        {"stream": "ERROR: No matching distribution found for nope\n"},
        {
            "error": "The command '/bin/sh -c pip install' returned a non-zero code: 1",
            "errorDetail": {"message": "The command returned a non-zero code: 1"},
        },
    ]
    with pytest.raises(BuildError) as info:
        Engine()._read_build(iter(stream), 0.0, lambda e: None)
    assert "No matching distribution" in "\n".join(info.value.log_tail)
    assert "non-zero code" in str(info.value)
