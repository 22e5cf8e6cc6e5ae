"""The BuildKit trace decoder and build tracker, on streams recorded from a real build.

The data files were written by ``tests/unit/data/record_buildkit_trace.py`` on this project's
Docker 20.10 engine (``POST /build?version=2``, no cache); see that script.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from cloudship.buildkit import BuildTracker
from cloudship.buildkit_trace import TraceDecodeError, decode_status, decode_trace
from cloudship.errors import BuildError
from cloudship.events import BuildLog, BuildStep, BuildStepStarted, Event

DATA = Path(__file__).parent / "data"


def stream(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


def traces(name: str) -> list[str]:
    return [c["aux"] for c in stream(name) if c.get("id") == "moby.buildkit.trace"]


def test_decoder_reads_every_vertex_of_the_recorded_build() -> None:
    vertexes = [v for aux in traces("buildkit-trace-ok.jsonl") for v in decode_trace(aux).vertexes]
    names = {v.name for v in vertexes}
    assert "[deps 2/2] RUN echo deps > /deps.txt" in names
    assert "[stage-1 4/4] COPY . /app" in names
    assert all(v.digest.startswith("sha256:") for v in vertexes)
    done = [v for v in vertexes if v.completed]
    assert done and all(v.started and v.completed >= v.started for v in done)
    # a step's inputs are earlier vertexes' digests
    run = next(v for v in vertexes if v.name.startswith("[stage-1 3/4] RUN"))
    assert run.inputs and set(run.inputs) <= {v.digest for v in vertexes}


def test_decoder_reads_logs_with_their_stream() -> None:
    logs = [log for aux in traces("buildkit-trace-ok.jsonl") for log in decode_trace(aux).logs]
    text = b"".join(log.data for log in logs if log.stream == 1)
    assert b"line 1\nline 2\nline 3\n" in text
    assert any(log.stream == 2 and b"to-stderr" in log.data for log in logs)
    assert all(log.timestamp and log.timestamp > 1.6e9 for log in logs)


def test_decoder_reads_the_failing_vertex_error() -> None:
    vertexes = [
        v for aux in traces("buildkit-trace-failed.jsonl") for v in decode_trace(aux).vertexes
    ]
    failed = [v for v in vertexes if v.error]
    assert failed and "exit code: 3" in failed[0].error


def test_decoder_skips_unknown_fields() -> None:
    # field 15 (varint) and field 9 (bytes) inside a vertex: not in control.proto's Vertex
    vertex = b"\x0a\x03abc" + b"\x78\x01" + b"\x4a\x02zz" + b"\x1a\x01n" + b"\x20\x01"
    decoded = decode_status(b"\x0a" + bytes([len(vertex)]) + vertex)
    assert decoded.vertexes[0].digest == "abc"
    assert decoded.vertexes[0].name == "n"
    assert decoded.vertexes[0].cached is True


@pytest.mark.parametrize("data", [b"\x0a\x10abc", b"\x0a", b"\x0b"])
def test_decoder_refuses_truncated_or_invalid_bytes(data: bytes) -> None:
    with pytest.raises(TraceDecodeError):
        decode_status(data)


def test_decoder_refuses_non_base64() -> None:
    with pytest.raises(TraceDecodeError):
        decode_trace("not base64!")


def test_tracker_emits_steps_as_they_start_and_finish() -> None:
    events: list[Event] = []
    tracker = BuildTracker(events.append)
    for chunk in stream("buildkit-trace-ok.jsonl"):
        tracker.feed(chunk)
    assert tracker.image_id and tracker.image_id.startswith("sha256:")
    started = [e for e in events if isinstance(e, BuildStepStarted)]
    finished = [e for e in events if isinstance(e, BuildStep)]
    assert {e.instruction for e in started} == {e.instruction for e in finished}
    run = next(e for e in finished if e.instruction.startswith("RUN for"))
    assert (run.stage, run.step, run.total, run.cached) == ("stage-1", 3, 4, False)
    assert run.seconds > 0
    # each step's start comes before its end, its output in between
    lines = [e.line for e in events if isinstance(e, BuildLog)]
    assert [x for x in lines if x.startswith("line")] == ["line 1", "line 2", "line 3"]
    i_start = next(
        i
        for i, e in enumerate(events)
        if isinstance(e, BuildStepStarted) and e.instruction.startswith("RUN for")
    )
    i_log = next(i for i, e in enumerate(events) if isinstance(e, BuildLog) and e.line == "line 1")
    i_end = events.index(run)
    assert i_start < i_log < i_end


def test_tracker_error_names_the_step_and_shows_its_output() -> None:
    tracker = BuildTracker(lambda e: None)
    with pytest.raises(BuildError) as info:
        for chunk in stream("buildkit-trace-failed.jsonl"):
            tracker.feed(chunk)
    message = str(info.value)
    assert "step 2/2 failed: RUN echo about to fail" in message
    assert "exit code: 3" in message
    assert info.value.log_tail == ["about to fail", "the last words"]


def test_tracker_ignores_an_undecodable_trace_line() -> None:
    tracker = BuildTracker(lambda e: None)
    tracker.feed({"id": "moby.buildkit.trace", "aux": base64.b64encode(b"\x0b").decode()})
    assert tracker.steps == {}
