"""Record the build streams the BuildKit trace tests read (run by hand, on a real engine).

    .venv/bin/python tests/unit/data/record_buildkit_trace.py

Builds two small Dockerfiles on the local engine with ``POST /build?version=2`` (no cache, so
every step runs) and writes each raw decoded JSON stream, one chunk a line, to
``buildkit-trace-ok.jsonl`` and ``buildkit-trace-failed.jsonl`` beside this file; then removes
the image it tagged. Needs only ``busybox:latest`` (scripts/dev-env makes a stand-in).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cloudship import buildkit
from cloudship.engine import Engine

HERE = Path(__file__).parent
OK = """\
FROM busybox:latest AS deps
RUN echo deps > /deps.txt
FROM busybox:latest
COPY --from=deps /deps.txt /
RUN for i in 1 2 3; do echo line $i; done; echo to-stderr >&2
COPY . /app
"""
FAILED = """\
FROM busybox:latest
RUN echo about to fail; echo the last words >&2; exit 3
"""


def record(dockerfile: str, out: Path, tag: str) -> None:
    engine = Engine()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "Dockerfile").write_text(dockerfile)
        request = buildkit.BuildKitRequest(
            tag=tag,
            dockerfile="Dockerfile",
            buildargs={},
            target=None,
            platform=None,
            labels={},
            cache_from=(),
            no_cache=True,
        )
        stream = buildkit.post_build(engine.client.api, buildkit.context_tar(Path(tmp)), request)
        with out.open("w") as handle:
            for chunk in stream:
                handle.write(json.dumps(chunk) + "\n")
    if engine.inspect(tag):
        engine.client.images.remove(tag)


if __name__ == "__main__":
    record(OK, HERE / "buildkit-trace-ok.jsonl", "cloudship-test/trace-ok:1")
    record(FAILED, HERE / "buildkit-trace-failed.jsonl", "cloudship-test/trace-failed:1")
