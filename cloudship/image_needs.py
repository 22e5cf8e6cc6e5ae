"""What a runtime will run inside the image, checked against the built image before any push.

A runtime that runs a command of the user's in the container (ECS's container health check,
say) lists it through ``Runtime.image_needs``; the ship then looks each executable up in the
image's filesystem, by the image's own ``PATH``, and refuses before anything is pushed when
none of a need's alternatives is there. Without it the first sign is a task that goes
UNHEALTHY minutes into the deploy: ``wget`` is not in python:3.11-slim, nothing is in
distroless images.

``shell_needs`` reads a ``sh -c`` command line with the standard library's ``shlex`` (its
``punctuation_chars`` mode splits on ``||``, ``&&``, ``;`` and ``|``): each command's first word
is what must exist, and ``a || b`` is satisfied when either side is. It does not try to be a
shell: words it cannot judge (variables, substitutions, subshells) are not checked, so the check
can miss a gap but never refuses a command that would run.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

#: what ``sh`` runs itself (POSIX special and regular built-ins, and ``[``): nothing to find
_BUILTIN_WORDS = """
: . [ break cd command continue echo eval exec exit export false printf pwd read return set
shift test times trap true type ulimit umask unset wait
"""
SHELL_BUILTINS = frozenset(_BUILTIN_WORDS.split())
#: commands that only fail: ``curl -f … || exit 1`` has no second way to pass
_FAILING = frozenset({"exit", "false", "return"})
#: the PATH an image without one gets from the engine (moby's ``oci.DefaultPathEnv`` on Linux)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageNeed:
    """``what`` (e.g. "health_command 'curl -f …'") runs in the image; it can when every
    executable of at least one of ``any_of`` is there."""

    what: str
    any_of: tuple[tuple[str, ...], ...]
    fix: str


def shell_needs(command: str, *, shell: str = "/bin/sh") -> tuple[tuple[str, ...], ...]:
    """The alternatives of executables ``shell -c command`` needs, ``shell`` in each."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: the shell would refuse it too, but say so there
        return ((shell,),)
    alternatives: list[tuple[str, ...]] = []
    current: list[str] = [shell]
    at_start, fails = True, False
    for token in tokens:
        if token == "||":
            if not fails:
                alternatives.append(tuple(dict.fromkeys(current)))
            current, at_start, fails = [shell], True, False
        elif token in ("&&", ";", "|", "&"):
            at_start = True
        elif set(token) <= set("();<>|&"):
            at_start = token in ("(", ")") or at_start  # redirections keep the position
        elif at_start:
            at_start = False
            if "=" in token.split("/")[0] and not token.startswith("="):
                at_start = True  # FOO=1 cmd: an assignment, the command comes next
            elif token in _FAILING:
                fails = fails or len(current) == 1  # a branch that runs nothing but fails
            elif token.startswith("."):
                pass  # relative to the working directory: not judged
            elif token not in SHELL_BUILTINS and not any(c in token for c in "$`*?{}"):
                current.append(token)
    if not fails or not alternatives:
        alternatives.append(tuple(dict.fromkeys(current)))
    return tuple(alternatives)


def candidates(name: str, path: str | None) -> tuple[str, ...]:
    """Where ``name`` would be found: itself when it has a slash, else each ``PATH`` entry."""
    if "/" in name:
        return (name if name.startswith("/") else "/" + name,)
    dirs = [d for d in (path or DEFAULT_PATH).split(":") if d.startswith("/")]
    return tuple(f"{d.rstrip('/')}/{name}" for d in dict.fromkeys(dirs))


def unmet(need: ImageNeed, present: set[str]) -> str | None:
    """What the image lacks to run ``need`` ("wget", "wget, nor curl"), None when it has it."""
    gaps = []
    for alternative in need.any_of:
        missing = [name for name in alternative if name not in present]
        if not missing:
            return None
        gaps.append(" and ".join(missing))
    return ", nor ".join(dict.fromkeys(gaps)) or None
