"""The CLI's live build display: running steps with their last output lines, like docker build."""

from __future__ import annotations

import io

from rich.console import Console

from cloudship.cli_report import Reporter
from cloudship.events import (
    BuilderChosen,
    BuildFinished,
    BuildLog,
    BuildStep,
    BuildStepStarted,
    DockerfileWarning,
)


def test_running_step_and_its_output_are_shown_live_then_the_result_stays() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    report = Reporter(console)
    run = "RUN pip install -r requirements.txt"
    report(BuildStepStarted(step=3, total=4, instruction=run))
    for n in range(10):
        report(BuildLog(step=3, instruction=run, line=f"Collecting package-{n}"))
    assert report.live is not None
    shown = report.running[(None, 3)][1]
    assert shown == [f"Collecting package-{n}" for n in range(4, 10)]  # the last TAIL lines
    report(BuildStep(step=3, total=4, instruction=run, cached=False, seconds=11.2))
    report(
        BuildFinished(
            image_id="sha256:" + "a" * 64, steps=4, cache_hits=2, seconds=12.0, first_miss=run
        )
    )
    assert report.live is None and report.running == {}
    text = screen.getvalue()
    assert "step 3/4" in text and "11.2s" in text and "first rebuilt: RUN pip install" in text


def test_classic_fallback_and_warnings_are_printed() -> None:
    screen = io.StringIO()
    report = Reporter(Console(file=screen, width=200))
    report(BuilderChosen(builder="buildkit"))
    report(BuilderChosen(builder="classic", reason="DOCKER_BUILDKIT=0 is set"))
    report(DockerfileWarning(code="layer-order", line=3, message="Dockerfile line 3 copies ..."))
    text = screen.getvalue()
    assert text.count("builder") == 1 and "classic: DOCKER_BUILDKIT=0 is set" in text
    assert "(layer-order) Dockerfile line 3" in text
