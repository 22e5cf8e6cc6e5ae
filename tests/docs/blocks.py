"""The Python blocks of docs/*.md and what each says about itself.

Every ```python block carries a marker on the line above it:

- ``<!-- docs-test: run -->``: a script, run from the repository root (``examples/…`` paths
  resolve) on the local target, in a project and registry of its own;
- ``<!-- docs-test: pytest -->``: a test module, run by pytest in an empty folder outside this
  repository, as in a user's project (only the fixtures cloudship's pytest plugin provides);
- ``<!-- docs-test: skip REASON -->``: a signature, a sketch, or a block that needs a real
  cloud account; the reason says which.

A block without a marker fails ``tests/unit/test_docs_blocks.py``: a new block must say
whether it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_MARK = re.compile(r"<!--\s*docs-test:\s*(run|pytest|skip)\b\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str
    kind: str | None  # run | pytest | skip | None (unmarked)
    reason: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks() -> list[Block]:
    found: list[Block] = []
    for page in sorted(DOCS.glob("**/*.md")):
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mark = _MARK.search(before)
            found.append(
                Block(
                    page=page.relative_to(DOCS).as_posix(),
                    line=text.count("\n", 0, match.start()) + 1,
                    code=match.group(1),
                    kind=mark.group(1) if mark else None,
                    reason=mark.group(2) if mark else "",
                )
            )
    return found
