"""The ``cloudship`` command: the Python API, from the shell.

Progress goes to stderr (rich), results to stdout; ``--json`` prints the result as JSON for
scripts. Exit codes: 0 success, 1 a cloudship error, 2 bad input (``ConfigError``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from cloudship.errors import CloudshipError, ConfigError

if TYPE_CHECKING:
    from rich.console import Console


class _LazyGroup(TyperGroup):
    """Builds ``ship``, ``dev`` and ``plan`` (whose flags come from ``ShipOptions``, which
    imports pydantic) only when one of them runs or shows its own help: ``cloudship --help``
    and the other commands stay fast. Click's documented lazy-subcommand pattern."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*_SHIP_LIKE, *super().list_commands(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in _SHIP_LIKE and cmd_name not in self.commands:
            function = _SHIP_LIKE[cmd_name][0]
            return TyperCommand(cmd_name, help=function.__doc__)  # for the command list only
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        if args and args[0] in _SHIP_LIKE and args[0] not in self.commands:
            function, for_plan = _SHIP_LIKE[args[0]]
            single = typer.Typer(**_TYPER)
            single.command(name=args[0])(with_ship_options(for_plan=for_plan)(function))
            self.commands[args[0]] = typer.main.get_command(single)
        return super().resolve_command(ctx, args)


_SHIP_LIKE: dict[str, tuple[Callable[..., None], bool]] = {}


def _ship_like(*, for_plan: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a command that takes ``ShipOptions`` flags (built lazily: ``_LazyGroup``)."""

    def register(function: Callable[..., None]) -> Callable[..., None]:
        _SHIP_LIKE[function.__name__] = (function, for_plan)
        return function

    return register


_TYPER: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    # Plain click help: typer's rich help imports rich.markdown (markdown-it, pygments), which
    # alone would take `cloudship --help` past 0.3 s.
    "rich_markup_mode": None,
}
app = typer.Typer(
    name="cloudship",
    cls=_LazyGroup,
    help="Ship containers: build, push, deploy by digest, health-gated, with rollback.",
    no_args_is_help=True,
    **_TYPER,
)


class _Console:
    """A rich ``Console`` made on first use: rich is imported only when something prints."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, soft_wrap=True)
        return self._console

    def print(self, *objects: Any, highlight: bool | None = None) -> None:
        self.console.print(*objects, highlight=highlight)


def escape(text: str) -> str:
    """``text`` with rich markup made literal (``[x]`` is not a style)."""
    from rich.markup import escape

    return escape(text)


def _reporter() -> Any:
    from cloudship.cli_report import Reporter

    return Reporter(err.console)


out = _Console(stderr=False)
err = _Console(stderr=True)

TargetOpt = Annotated[
    str | None, typer.Option("--target", "-t", help="target name (default: config, then local)")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="provider setting KEY=VALUE, e.g. --set host_port=8080"),
]


def _version(value: bool) -> None:
    if value:
        from cloudship import __version__

        sys.stdout.write(f"cloudship {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Ship containers: build, push, deploy by digest, health-gated, with rollback."""


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep:
            if what == "--secret" and key in os.environ:
                result[key] = os.environ[key]  # keep secret values off the command line
                continue
            raise ConfigError(f"{what} {item!r} is not KEY=VALUE", fix=f"use {what} KEY=VALUE")
        result[key] = value
    return result


def _dockerfile(source: str, file: str | None) -> str | None:
    """``-f`` as ``docker build`` reads it (relative to the working directory), turned into the
    path inside the build context that ``ship(dockerfile=...)`` takes."""
    if file is None:
        return None
    from pathlib import Path

    context = Path(source).resolve()
    given = Path(file)
    path = (given if given.is_absolute() else Path.cwd() / given).resolve()
    if not path.is_file() and not given.is_absolute() and (context / given).is_file():
        path = (context / given).resolve()  # also accept a path relative to SOURCE
    if not path.is_file():
        raise ConfigError(f"--file {file}: no such file", fix="name an existing Dockerfile")
    if not path.is_relative_to(context):
        raise ConfigError(
            f"--file {file} is outside the build context {source}",
            fix="move the Dockerfile into the directory you ship",
        )
    return path.relative_to(context).as_posix()


def _settings(values: list[str] | None) -> dict[str, Any]:
    return {key: value for key, value in _pairs(values, "--set").items()}


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except CloudshipError as exc:
        err.print(f"[bold red]error[/] ({type(exc).__name__}): {escape(str(exc))}", highlight=False)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None


def _emit(as_json: bool, model: Any, human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(model.model_dump_json(indent=2) + "\n")
    else:
        human()


def _cli_type(annotation: Any) -> Any:
    """The plain type typer should parse an option's value as (``int`` for ``StrictInt``)."""
    import types
    import typing

    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _cli_type(inner[0])
    return annotation


def with_ship_options(*, for_plan: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the flags of every ``ShipOptions`` option (``cloudship.options``): the
    options are declared once, for the Python API and the CLI alike. The command receives
    them as ``**options``, already folded (``--env K=V`` → ``env={"K": "V"}``)."""
    import functools
    import inspect

    from cloudship.options import cli_flags

    flags = [f for f in cli_flags() if not (for_plan and f[2].ship_only)]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        fixed = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        added: list[inspect.Parameter] = []
        for option, annotation, flag in flags:
            decls = flag.flags or (f"--{option.replace('_', '-')}",)
            default: Any = None
            if flag.kind in ("pairs", "secret"):
                kind: Any = list[str] | None
            elif flag.kind == "flag":
                kind, default = bool, False
            else:
                kind = _cli_type(annotation) | None
                # --timeout left out: None, so that ship derives it from what the target's
                # rollout needs (at least DEFAULT_TIMEOUT; Runtime.rollout_seconds)
            added.append(
                inspect.Parameter(
                    option,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=default,
                    annotation=Annotated[kind, typer.Option(*decls, help=flag.help)],
                )
            )
        kinds = {option: flag.kind for option, _, flag in flags}
        names = {
            option: (flag.flags or (f"--{option.replace('_', '-')}",))[0]
            for option, _, flag in flags
        }

        @functools.wraps(command)
        def run(*args: Any, **values: Any) -> None:
            options = {k: v for k, v in values.items() if k in kinds}
            if options.get("timeout", 0) is None:  # left out: ship derives it
                del options["timeout"]
            rest = {k: v for k, v in values.items() if k not in kinds}
            with _errors():  # a bad --env/--secret item is bad input, not a traceback
                for option, kind in kinds.items():
                    if kind in ("pairs", "secret"):
                        flag_name = "--secret" if kind == "secret" else names[option]
                        options[option] = _pairs(options.get(option), flag_name)
            command(*args, **rest, **options)

        positional = [p for p in fixed if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        keyword = [p for p in fixed if p.kind is inspect.Parameter.KEYWORD_ONLY]
        run.__signature__ = inspect.Signature([*positional, *keyword, *added])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in [*fixed, *added]}
        return run

    return decorate


@_ship_like(for_plan=False)
def ship(
    source: Annotated[str, typer.Argument(help="directory with a Dockerfile, or an image")],
    *,
    targets: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            help="target name (default: config, then local); repeat to ship to several at once",
        ),
    ] = None,
    settings: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the Shipment as JSON")] = False,
    **options: Any,
) -> None:
    """Build, push and deploy SOURCE; print its URL.

    With several --target, SOURCE is built once and each target prints its own line."""
    from cloudship.api import ship as do_ship
    from cloudship.errors import MultiTargetError
    from cloudship.shipment import Shipment

    chosen = targets or []
    target: str | list[str | Any] | None = chosen[0] if len(chosen) == 1 else (chosen or None)
    results: list[Shipment] = []
    try:
        options["dockerfile"] = _dockerfile(source, options.get("dockerfile"))
        result = do_ship(
            source, target, on_event=_reporter(), settings=_settings(settings), **options
        )
        results = result if isinstance(result, list) else [result]
    except MultiTargetError as exc:
        _print_shipments(list(exc.shipped.values()), as_json, failed=exc.failed)
        err.print(f"[bold red]error[/] (MultiTargetError): {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    except CloudshipError as exc:
        err.print(f"[bold red]error[/] ({type(exc).__name__}): {escape(str(exc))}", highlight=False)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None
    if as_json and len(chosen) <= 1:
        sys.stdout.write(results[0].model_dump_json(indent=2) + "\n")
    else:
        _print_shipments(results, as_json)


def _print_shipments(
    results: list[Any], as_json: bool, failed: dict[str, CloudshipError] | None = None
) -> None:
    """Human lines, or for several targets a JSON object ``{"shipped": [...], "failed": {...}}``."""
    if as_json:
        body = {
            "shipped": [r.model_dump(mode="json") for r in results],
            "failed": {name: str(exc) for name, exc in (failed or {}).items()},
        }
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    for result in results:
        state = "[green]shipped[/]" if result.changed else "[dim]unchanged[/]"
        out.print(f"{state} {result.target}: {result.name} {result.revision} → {result.url}")
        out.print(f"  image {result.image}", highlight=False)


@_ship_like(for_plan=False)
def dev(
    source: Annotated[str, typer.Argument(help="directory with a Dockerfile")] = ".",
    *,
    target: TargetOpt = None,
    settings: SetOpt = None,
    rm: Annotated[
        bool, typer.Option("--rm", help="destroy the service when watching stops")
    ] = False,
    debounce: Annotated[
        float, typer.Option(help="seconds of quiet after a save before shipping it")
    ] = 0.05,  # cloudship.dev.DEFAULT_DEBOUNCE, not imported here: --help stays fast
    **options: Any,
) -> None:
    """Ship SOURCE, then re-ship it on every save.

    Ctrl-C stops watching.

    Each save goes through the same layer cache and health gate as `ship`; a save that fails
    to build or fails the gate keeps the last good version serving. The service keeps running
    after Ctrl-C unless --rm is given."""
    import signal

    from cloudship.dev import dev as do_dev

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a process manager, `kill`) stops like Ctrl-C

    previous = signal.signal(signal.SIGTERM, interrupt)
    with _errors(), contextlib.ExitStack() as restore:
        restore.callback(signal.signal, signal.SIGTERM, previous)
        passes = do_dev(
            source,
            target,
            rm=rm,
            debounce=debounce,
            on_event=_reporter(),
            on_iteration=_print_iteration,
            settings=_settings(settings),
            **options,
        )
    served = [p.shipment for p in passes if p.shipment is not None]
    if served:
        last = served[-1]
        state = f"{last.name} destroyed" if rm else f"{last.name} keeps serving at {last.url}"
        count = f"{len(passes)} {'pass' if len(passes) == 1 else 'passes'}"
        err.print(f"stopped watching after {count}; {state}")


def _print_iteration(iteration: Any) -> None:
    """One line per pass: what changed, what the cache saved, what moved, how long it took."""
    changed = list(iteration.changed)
    files = ", ".join(changed[:4]) + (f" (+{len(changed) - 4} more)" if len(changed) > 4 else "")
    from cloudship.cli_report import count

    what = escape(files) if files else "first ship"
    shipped = iteration.shipment
    if shipped is not None:
        build = (
            f"{shipped.build.cache_hits}/{shipped.build.steps} steps from cache"
            if shipped.build
            else "no build"
        )
        push = shipped.push
        if push is None or push.skipped:
            moved = "push skipped"
        elif push.layers_pushed == 0:
            moved = f"no new layers ({push.layers_existing} already there)"
        else:
            moved = f"{count(push.layers_pushed, 'layer')} ({push.bytes_pushed:,} bytes) pushed"
        state = "[green]serving[/]" if shipped.changed else "[dim]unchanged[/]"
        out.print(
            f"[bold]#{iteration.number}[/] {what}: {build}, {moved}; {state} {shipped.revision} "
            f"at {shipped.url} in {iteration.seconds:.2f}s",
            highlight=False,
        )
        return
    error = iteration.error
    out.print(f"[bold]#{iteration.number}[/] {what}: [bold red]failed[/] ({type(error).__name__})")
    err.print(escape(str(error)), highlight=False)
    keeps = f"the last good version keeps serving at {iteration.url}" if iteration.url else ""
    out.print(f"  {keeps or 'nothing serves yet'}; save again to retry", highlight=False)


@_ship_like(for_plan=True)
def plan(
    source: Annotated[str, typer.Argument(help="directory with a Dockerfile, or an image")],
    *,
    target: TargetOpt = None,
    settings: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    **options: Any,
) -> None:
    """Show what `ship` would do, changing nothing.

    Same options and checks as `ship`; builds locally, only reads remote state."""
    from cloudship.api import plan as do_plan

    with _errors():
        options["dockerfile"] = _dockerfile(source, options.get("dockerfile"))
        result = do_plan(
            source, target, on_event=_reporter(), settings=_settings(settings), **options
        )

    def human() -> None:
        for action in result.actions:
            out.print(f"  • {action}", highlight=False)

    _emit(as_json, result, human)


@app.command()
def status(
    name: str,
    target: TargetOpt = None,
    settings: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the serving revision and the earlier ones."""
    from cloudship.api import status as do_status

    with _errors():
        result = do_status(name, target, **_settings(settings))

    def human() -> None:
        from rich.table import Table

        table = Table(title=f"{name} → {result.url or 'not serving'}")
        for column in ("revision", "state", "digest", "created"):
            table.add_column(column)
        for rev in result.revisions:
            table.add_row(rev.id, rev.state, rev.digest[:19], str(rev.created or ""))
        out.print(table)

    _emit(as_json, result, human)


@app.command()
def logs(
    name: str,
    target: TargetOpt = None,
    tail: Annotated[int, typer.Option(help="number of lines")] = 100,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new lines (Ctrl-C stops)")
    ] = False,
    settings: SetOpt = None,
) -> None:
    """Print the service's last log lines, or follow them.

    The serving revision's last lines; with -f, new lines as they come, across deploys,
    until Ctrl-C."""
    import threading

    from cloudship.api import follow_logs
    from cloudship.api import logs as do_logs

    if not follow:
        with _errors():
            lines = do_logs(name, target, tail, **_settings(settings))
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    stop = threading.Event()
    try:
        with _errors():
            for line in follow_logs(name, target, tail, stop=stop, **_settings(settings)):
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()


@app.command()
def rollback(
    name: str,
    target: TargetOpt = None,
    to: Annotated[str | None, typer.Option("--to", help="revision, e.g. r2")] = None,
    timeout: Annotated[float, typer.Option(help="seconds for the health gate")] = 300.0,
    settings: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Serve an earlier revision (the previous one by default)."""
    from cloudship.api import rollback as do_rollback

    with _errors():
        result = do_rollback(
            name, target, to, timeout=timeout, on_event=_reporter(), **_settings(settings)
        )
    _emit(
        as_json,
        result,
        lambda: out.print(f"{name}: {result.revision} serves {result.url}"),
    )


@app.command()
def destroy(
    name: str,
    target: TargetOpt = None,
    missing_ok: Annotated[
        bool, typer.Option("--missing-ok", help="exit 0 when the service does not exist")
    ] = False,
    settings: SetOpt = None,
) -> None:
    """Remove the service and all its revisions.

    Images stay in the registry. A service that does not exist is an error (exit 1) unless
    --missing-ok."""
    from cloudship.api import destroy as do_destroy

    with _errors():
        removed = do_destroy(name, target, missing_ok=missing_ok, **_settings(settings))
    out.print(f"destroyed {name}" if removed else f"{name} is not deployed: nothing to destroy")


@app.command()
def services(
    target: TargetOpt = None,
    settings: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False,
) -> None:
    """List the services deployed on a target.

    One line per service: its serving revision and URL."""
    from cloudship.api import services as do_services
    from cloudship.api import status as do_status
    from cloudship.errors import ServiceNotFoundError

    chosen = _settings(settings)
    with _errors():
        names = do_services(target, **chosen)
        found = []
        for service in names:
            try:
                found.append(do_status(service, target, **chosen))
            except ServiceNotFoundError:  # destroyed between the listing and the look-up
                continue
    if as_json:
        body = [
            {
                "name": one.service,
                "url": one.url,
                "revision": one.current.id if one.current else None,
                "digest": one.current.digest if one.current else None,
            }
            for one in found
        ]
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    if not found:
        err.print("no services (ship one with `cloudship ship DIR`)")
        return
    from rich.table import Table

    table = Table(box=None)
    for column in ("service", "revision", "url"):
        table.add_column(column)
    for one in found:
        table.add_row(one.service, one.current.id if one.current else "-", one.url or "not serving")
    out.print(table)


@app.command()
def targets(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the targets you can ship to.

    The target names this installation knows, and the named targets of the config."""
    from pathlib import Path

    from cloudship.config import find_config, where_targets_are
    from cloudship.targets import available

    with _errors():
        config = find_config(Path.cwd())
        files = where_targets_are(config)
    named = config.targets
    names = sorted(set(available()) | set(named))
    if as_json:
        sys.stdout.write(json.dumps(names) + "\n")
        return
    for target_name in names:
        table = named.get(target_name)
        where = files.get(target_name)
        label = (
            "[tool.cloudship] of pyproject.toml"
            if where and where.name == "pyproject.toml"
            else "cloudship.toml"
        )
        detail = f" ({label}: {table.get('registry')} + {table.get('runtime')})" if table else ""
        out.print(escape(target_name + detail), highlight=False)


def main() -> None:
    app()
