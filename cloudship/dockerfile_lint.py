"""Dockerfile checks that the build itself does not make: the guide's layer-order tip.

The Dockerfile is parsed with the ``dockerfile`` package (PyPI ``dockerfile``, asottile), a
binding to BuildKit's own Go parser (``moby/buildkit/frontend/dockerfile/parser``), shipped as
abi3 wheels. It was chosen over ``dockerfile-parse`` (a regex re-implementation): the official
grammar gets line continuations, escape directives, JSON forms, flags (``--mount``,
``--chmod``) and heredocs exactly as the engine reads them, and gives each instruction's first
line for the warning. It is a tiny, dependency-free package.

``layer-order``: a ``COPY``/``ADD`` of the whole context (``.``, ``./``, ``*``) before a step
that installs dependencies (pip, uv, poetry, npm/yarn/pnpm, bundle, go mod, cargo, composer,
apt-get) in the same stage makes every code change invalidate that step's cache: the step then
reruns and its layer is pushed again. The guide copies the dependency manifest first, installs,
then copies the code; that order gets no warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cloudship.errors import BuildError


@dataclass(frozen=True, slots=True)
class Instruction:
    cmd: str  # upper case: RUN, COPY, ...
    line: int  # first line, 1-based
    flags: tuple[str, ...]
    args: tuple[str, ...]
    original: str
    heredocs: int


@dataclass(frozen=True, slots=True)
class LintWarning:
    code: str
    line: int
    message: str


def parse(dockerfile: Path) -> list[Instruction]:
    """The Dockerfile's instructions as BuildKit's parser reads them."""
    import dockerfile as parser

    try:
        commands = parser.parse_file(str(dockerfile))
    except parser.GoParseError as exc:
        raise BuildError(
            f"{dockerfile.name} does not parse: {exc}",
            log_tail=[],
            fix="fix the Dockerfile syntax at the place named",
        ) from None
    return [
        Instruction(
            cmd=c.cmd.upper(),
            line=c.start_line,
            flags=tuple(c.flags),
            args=tuple(c.value),
            original=c.original,
            heredocs=len(c.heredocs),
        )
        for c in commands
    ]


# What each tool reads from the context, for the message's advice.
_INSTALLERS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "pip",
        re.compile(r"\bpip3?\s+install\b|\bpython3?\s+-m\s+pip\s+install\b"),
        "requirements.txt",
    ),
    ("uv", re.compile(r"\buv\s+(?:pip\s+install|sync)\b"), "pyproject.toml and uv.lock"),
    ("poetry", re.compile(r"\bpoetry\s+install\b"), "pyproject.toml and poetry.lock"),
    ("npm", re.compile(r"\bnpm\s+(?:ci|install|i)\b"), "package.json and package-lock.json"),
    ("yarn", re.compile(r"\byarn(?:\s+install)?\s*(?:$|&&|;|\s-)"), "package.json and yarn.lock"),
    ("pnpm", re.compile(r"\bpnpm\s+(?:install|i)\b"), "package.json and pnpm-lock.yaml"),
    ("bundle", re.compile(r"\bbundle\s+install\b"), "Gemfile and Gemfile.lock"),
    ("go mod", re.compile(r"\bgo\s+mod\s+download\b"), "go.mod and go.sum"),
    ("cargo", re.compile(r"\bcargo\s+(?:fetch|build)\b"), "Cargo.toml and Cargo.lock"),
    ("composer", re.compile(r"\bcomposer\s+install\b"), "composer.json and composer.lock"),
    ("apt-get", re.compile(r"\bapt-get\s+(?:-\S+\s+)*install\b"), ""),
)
_WHOLE_CONTEXT = {".", "./", "*", "./*", "/"}


def _copies_everything(instruction: Instruction) -> bool:
    if instruction.cmd not in ("COPY", "ADD") or instruction.heredocs:
        return False
    if any(flag.startswith("--from") for flag in instruction.flags):
        return False  # copies from another stage, not from the changing source
    sources = instruction.args[:-1]
    return any(source in _WHOLE_CONTEXT for source in sources)


def _installer(instruction: Instruction) -> tuple[str, str] | None:
    if instruction.cmd != "RUN":
        return None
    command = " ".join(instruction.args)
    for tool, pattern, manifest in _INSTALLERS:
        if pattern.search(command):
            return tool, manifest
    return None


def layer_order(
    instructions: list[Instruction], file_name: str = "Dockerfile"
) -> list[LintWarning]:
    """One ``layer-order`` warning per broad COPY/ADD that precedes a dependency install."""
    warnings: list[LintWarning] = []
    broad: Instruction | None = None
    for instruction in instructions:
        if instruction.cmd == "FROM":
            broad = None  # a new stage starts from its own cache chain
            continue
        if broad is None and _copies_everything(instruction):
            broad = instruction
            continue
        found = _installer(instruction) if broad is not None else None
        if broad is not None and found is not None:
            tool, manifest = found
            step = " ".join(instruction.args)
            step = step if len(step) <= 60 else step[:57] + "..."
            if manifest:
                advice = (
                    f"copy only {manifest} first, run the install, then copy the rest "
                    f"({broad.original.split(chr(10))[0]})"
                )
            else:
                advice = "move the install above this COPY: it needs nothing from the source"
            warnings.append(
                LintWarning(
                    code="layer-order",
                    line=broad.line,
                    message=(
                        f"{file_name} line {broad.line} copies the whole source before the "
                        f"{tool} install on line {instruction.line} (RUN {step}): every code "
                        f"change reruns that install and pushes its layer again; {advice}"
                    ),
                )
            )
            broad = None  # one warning per broad copy
    return warnings


def check(dockerfile: Path) -> list[LintWarning]:
    """Every warning for ``dockerfile`` (today: ``layer-order``)."""
    return layer_order(parse(dockerfile), dockerfile.name)
