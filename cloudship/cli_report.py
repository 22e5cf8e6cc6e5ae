"""The CLI's progress display: events in, rich output on stderr (``cloudship.cli``).

Its own module so that ``cloudship --help`` and the commands that print one line never import
rich's live display, progress bars and tables (tens of milliseconds for a fresh process).
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn
from rich.text import Text

from cloudship.events import (
    BuilderChosen,
    BuildFinished,
    BuildLog,
    BuildReused,
    BuildStep,
    BuildStepStarted,
    DeployPhase,
    DockerfileWarning,
    Event,
    Notice,
    PushFinished,
    PushProgress,
)


class Reporter:
    """Turns events into rich output on stderr."""

    #: output lines shown under each running build step, as ``docker build`` does
    TAIL = 6

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.layers: dict[str, TaskID] = {}
        self.live: Live | None = None
        self.running: dict[tuple[str | None, int], tuple[str, list[str]]] = {}

    def __call__(self, event: Event) -> None:
        prefix = f"[dim]{event.target}[/] " if event.target else ""
        if isinstance(event, BuildStepStarted | BuildLog | BuildStep):
            self._build(event)
        elif isinstance(event, BuildFinished):
            self._stop_live()
            miss = f"; first rebuilt: {escape(event.first_miss[:60])}" if event.first_miss else ""
            on = f" for {event.platform}" if event.platform else ""
            self.console.print(
                f"[bold]built[/] {event.image_id[:19]}{on} in {event.seconds:.1f}s "
                f"({event.cache_hits}/{event.steps} steps from cache{miss})"
            )
        elif isinstance(event, BuildReused):
            on = f" for {event.platform}" if event.platform else ""
            self.console.print(
                f"[bold]build[/] unchanged since {event.image_id[:19]}{on} (same context, "
                "Dockerfile, args and base images): not rebuilt"
            )
        elif isinstance(event, BuilderChosen):
            if event.builder != "buildkit":
                self.console.print(f"[yellow]builder[/] {event.builder}: {event.reason}")
        elif isinstance(event, DockerfileWarning):
            self.console.print(
                f"[yellow]warning[/] ({event.code}) {escape(event.message)}", highlight=False
            )
        elif isinstance(event, PushProgress):
            self._layer(event)
        elif isinstance(event, PushFinished):
            self._stop_progress()
            if event.skipped:
                self.console.print(f"{prefix}[bold]push[/] skipped: registry has {event.digest}")
            else:
                self.console.print(
                    f"{prefix}[bold]pushed[/] {count(event.layers_pushed, 'layer')} "
                    f"({event.bytes_pushed:,} bytes), {event.layers_existing} already there"
                )
        elif isinstance(event, DeployPhase):
            self.console.print(f"{prefix}[bold]{event.phase}[/] {event.detail}", highlight=False)
        elif isinstance(event, Notice):
            self.console.print(f"{prefix}[cyan]note[/] {event.message}")

    def _build(self, event: BuildStepStarted | BuildLog | BuildStep) -> None:
        """Finished steps print above a live area that shows each running step with its
        last output lines; the area disappears when the build ends."""
        if isinstance(event, BuildStepStarted):
            self.running[(event.stage, event.step)] = (event.instruction, [])
        elif isinstance(event, BuildLog):
            for (_, step), (instruction, lines) in self.running.items():
                if step == event.step and instruction == event.instruction:
                    lines.append(event.line)
                    del lines[: -self.TAIL]
                    break
        else:
            self.running.pop((event.stage, event.step), None)
            mark = "[green]cached[/]" if event.cached else "[yellow]built[/]"
            took = f" {event.seconds:.1f}s" if event.seconds and not event.cached else ""
            where = f"{event.stage} " if event.stage else ""
            self.console.print(
                f"  {where}step {event.step}/{event.total} {mark}{took} "
                f"{escape(event.instruction[:80])}",
                highlight=False,
            )
        if not self.running:
            return
        if self.live is None:
            self.live = Live(console=self.console, transient=True, refresh_per_second=8)
            self.live.start()
        rows: list[Text] = []
        for (stage, step), (instruction, lines) in self.running.items():
            name = f"{stage} " if stage else ""
            rows.append(Text(f"  => {name}{step} {instruction[:76]}", style="bold"))
            rows.extend(Text(f"     {line[:100]}", style="dim") for line in lines)
        self.live.update(Group(*rows))

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        self.running = {}

    def _layer(self, event: PushProgress) -> None:
        if self.progress is None:
            self.progress = Progress(
                TextColumn("  {task.description}"),
                BarColumn(),
                DownloadColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
        task = self.layers.get(event.layer)
        if task is None:
            task = self.progress.add_task(event.layer, total=event.total or None)
            self.layers[event.layer] = task
        done = event.status in ("Pushed", "Layer already exists") or event.status.startswith(
            "Mounted"
        )
        self.progress.update(
            task,
            total=event.total or None,
            completed=event.total if done else event.current,
            description=f"{event.layer} {event.status}",
        )

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.layers = {}


def count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
