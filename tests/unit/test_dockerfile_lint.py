"""The layer-order check, on Dockerfiles parsed by BuildKit's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudship.dockerfile_lint import check
from cloudship.errors import BuildError

EXAMPLE = Path(__file__).parents[2] / "examples" / "monitor-app" / "Dockerfile"


def lint(tmp_path: Path, text: str) -> list[tuple[int, str]]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return [(w.line, w.message) for w in check(path)]


def test_the_guides_order_gets_no_warning() -> None:
    assert check(EXAMPLE) == []


@pytest.mark.parametrize(
    ("install", "tool", "manifest"),
    [
        ("pip install --no-cache-dir -r requirements.txt", "pip", "requirements.txt"),
        ("python -m pip install .", "pip", "requirements.txt"),
        ("uv sync --frozen", "uv", "uv.lock"),
        ("poetry install --no-root", "poetry", "poetry.lock"),
        ("npm ci", "npm", "package-lock.json"),
        ("yarn install --frozen-lockfile", "yarn", "yarn.lock"),
        ("pnpm install", "pnpm", "pnpm-lock.yaml"),
        ("bundle install", "bundle", "Gemfile.lock"),
        ("go mod download", "go mod", "go.sum"),
        ("cargo fetch", "cargo", "Cargo.lock"),
        ("composer install", "composer", "composer.lock"),
        ("apt-get update && apt-get install -y curl", "apt-get", "move the install above"),
    ],
)
def test_whole_source_before_an_install_is_flagged(
    tmp_path: Path, install: str, tool: str, manifest: str
) -> None:
    found = lint(tmp_path, f"FROM base\nWORKDIR /app\nCOPY . .\nRUN {install}\nCMD x\n")
    assert len(found) == 1
    line, message = found[0]
    assert line == 3
    assert f"{tool} install on line 4" in message
    assert manifest in message


def test_line_continuations_and_json_forms_as_buildkit_reads_them(tmp_path: Path) -> None:
    text = 'FROM base\nCOPY ["./", "/app/"]\nRUN apk add x && \\\n    pip install \\\n  -r r.txt\n'
    assert [line for line, _ in lint(tmp_path, text)] == [2]


@pytest.mark.parametrize(
    "text",
    [
        # install first, code after: the guide's order
        "FROM b\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n",
        # a copy from another stage is not the changing source
        "FROM b AS w\nRUN x\nFROM b\nCOPY --from=w / /\nRUN pip install x\n",
        # a narrow copy
        "FROM b\nCOPY src/ /app/src/\nRUN pip install -r requirements.txt\n",
        # the broad copy and the install are in different stages
        "FROM b AS src\nCOPY . .\nFROM b\nRUN pip install flask\n",
        # no install after the copy
        "FROM b\nCOPY . .\nRUN python -m compileall .\n",
    ],
)
def test_no_warning_when_the_order_is_fine(tmp_path: Path, text: str) -> None:
    assert lint(tmp_path, text) == []


def test_a_dockerfile_the_parser_refuses_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="does not parse"):
        lint(tmp_path, "FROM b\nRUN <<EOF\nno end\n")
