"""What a runtime runs in the image, read from a shell command line (cloudship.image_needs)."""

from __future__ import annotations

import pytest

from cloudship.image_needs import ImageNeed, candidates, shell_needs, unmet


@pytest.mark.parametrize(
    ("command", "needs"),
    [
        ("curl -f http://localhost:8000/", (("/bin/sh", "curl"),)),
        # either way passes; the final `|| exit 1` is no way to pass
        (
            "wget -q -O- http://localhost/ || curl -f http://localhost/ || exit 1",
            (("/bin/sh", "wget"), ("/bin/sh", "curl")),
        ),
        ("curl -f x | grep ok && echo fine", (("/bin/sh", "curl", "grep"),)),
        (
            "FOO=1 /usr/bin/python3 -c 'print(1)' >/dev/null 2>&1",
            (("/bin/sh", "/usr/bin/python3"),),
        ),
        ("curl -f x && exit 0 || exit 1", (("/bin/sh", "curl"),)),
        # builtins, variables and relative paths are not judged: never a false refusal
        ("[ -f /tmp/ok ]", (("/bin/sh",),)),
        ("$HOME/bin/check", (("/bin/sh",),)),
        ("(cd /app && ./check.sh)", (("/bin/sh",),)),
        ("echo 'unbalanced", (("/bin/sh",),)),
    ],
)
def test_shell_needs(command: str, needs: tuple[tuple[str, ...], ...]) -> None:
    assert shell_needs(command) == needs


def test_unmet_names_every_way_the_image_lacks() -> None:
    need = ImageNeed("check", shell_needs("wget -q x || curl -f x"), fix="install one")
    assert unmet(need, {"/bin/sh"}) == "wget, nor curl"
    assert unmet(need, {"/bin/sh", "curl"}) is None
    assert unmet(need, {"wget", "curl"}) == "/bin/sh"


def test_candidates_follow_the_image_path() -> None:
    assert candidates("curl", "/opt/bin:/usr/bin:relative") == ("/opt/bin/curl", "/usr/bin/curl")
    assert candidates("curl", None)[-1] == "/bin/curl"  # the engine's default PATH
    assert candidates("/usr/bin/python3", "/x") == ("/usr/bin/python3",)
