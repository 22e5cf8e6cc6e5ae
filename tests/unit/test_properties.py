"""Property tests over every public entry point (issue 8, item 8).

Generated arguments — good, bad and plain junk — go to ``ship``, ``plan``, ``status``,
``logs``, ``rollback``, ``destroy``, the ``cloudship`` CLI and the cloudship.toml reader. Each
property says: only a ``CloudshipError`` ever escapes, and when the call is refused nothing
was created (no build, tag, push, repository or revision). The recording target and engine
(tests/unit/recording.py) double as oracles: input the boundary should have refused that
reaches them fails the example right there.

About 700 examples in all (``max_examples`` below); the ``ci`` profile (tests/unit/conftest.py)
derandomizes them so CI runs the same cases every time.
"""

from __future__ import annotations

import json
import math
import os
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cloudship import api
from cloudship.cli import app as cli
from cloudship.config import find_config
from cloudship.errors import CloudshipError, ConfigError
from cloudship.targets import KNOWN_TARGETS, _Known, available
from tests.conftest import write_app
from tests.unit.recording import Calls, RecordingEngine, provider, recording_target


@pytest.fixture(scope="module", autouse=True)
def _world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working directory with no config, no CLOUDSHIP_* variables, and ``recording`` as a
    target name (for the CLI, which only takes names)."""
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith("CLOUDSHIP_"):
                patch.delenv(key)
        work = tmp_path_factory.mktemp("cwd")
        patch.chdir(work)
        patch.setitem(KNOWN_TARGETS, "recording", _Known("tests.unit.recording:provider", (), None))
        yield work


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_app(tmp_path_factory.mktemp("src") / "web")


# -- strategies: a little of everything, with the good values frequent enough to ship -----------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
label = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?\Z")
env_name = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,8}\Z")
url_path = st.text(alphabet=string.ascii_letters + string.digits + "-._~/?=&:", max_size=20)
# Never None and never a real target's name: those would reach a real engine and runtime.
unknown_target = st.text(alphabet=string.ascii_lowercase + "-", min_size=1, max_size=12).filter(
    lambda name: name not in available()
)
not_a_target = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.text(alphabet=" \t\n/\x00:", min_size=1, max_size=4),
)

#: Values every target must accept (the recording runtime builds linux/amd64).
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "name": label,
    "tag": st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}\Z"),
    "port": st.integers(1, 65535),
    "env": st.dictionaries(env_name, st.text(max_size=10).filter(lambda v: "\x00" not in v)),
    "secrets": st.dictionaries(env_name, st.text(max_size=10).filter(lambda v: "\x00" not in v)),
    "health_path": st.lists(
        st.one_of(url_path, st.sampled_from(["%20", "%2F", "?a=1", "@", ":"])), max_size=4
    ).map(lambda parts: "/" + "".join(parts).lstrip("/")),
    "cpu": st.one_of(st.floats(0.01, 1024), st.integers(1, 64)),
    "memory": st.one_of(
        st.integers(6, 65536).map(lambda n: f"{n}Mi"),
        st.integers(1, 64).map(lambda n: f"{n}Gi"),
        st.sampled_from(["512M", "2GB", "0.5Gi"]),
    ),
    "replicas": st.integers(0, 10),
    "platform": st.sampled_from(["linux/amd64", "linux/x86_64", "Linux/AMD64"]),
    # A valid timeout shorter than the ship itself ends in ShipTimeoutError by design (the
    # whole ship is bounded), so "always ships" draws timeouts a memory ship fits in.
    "timeout": st.one_of(st.floats(5, 86_400), st.integers(5, 3600)),
    "force": st.booleans(),
}
#: Anything: good values, near misses and junk of every type.
ANY: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(GOOD["name"], st.text(max_size=70), junk),
    "tag": st.one_of(GOOD["tag"], st.text(max_size=140), junk),
    "port": st.one_of(GOOD["port"], st.integers(-5, 70_000), junk),
    "env": st.one_of(
        GOOD["env"],
        st.dictionaries(st.text(max_size=6), st.one_of(st.text(max_size=4), junk), max_size=3),
        junk,
    ),
    "secrets": st.one_of(
        GOOD["secrets"], st.dictionaries(st.text(max_size=6), junk, max_size=2), junk
    ),
    "health_path": st.one_of(GOOD["health_path"], st.text(max_size=30), junk),
    "cpu": st.one_of(
        GOOD["cpu"],
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([1e-12, math.inf, math.nan, 0]),
        junk,
    ),
    "memory": st.one_of(
        GOOD["memory"],
        st.sampled_from(["5Mi", "0", "1", "-1Mi", "1e3Mi"]),
        st.from_regex(r"\A[0-9]{1,6}(Ki|Mi|Gi|K|M|G)?\Z"),
        junk,
    ),
    "replicas": st.one_of(GOOD["replicas"], st.integers(-3, 3), junk),
    "platform": st.one_of(
        GOOD["platform"], st.sampled_from(["linux/arm64", "linux", "a/b/c/d"]), st.text(), junk
    ),
    "timeout": st.one_of(GOOD["timeout"], st.floats(), st.integers(-1, 10), junk),
    "force": st.one_of(GOOD["force"], junk),
}


@st.composite
def ship_kwargs(draw: st.DrawFn, table: dict[str, st.SearchStrategy[Any]] = ANY) -> dict[str, Any]:
    chosen = draw(st.sets(st.sampled_from(sorted(table)), max_size=6))
    return {field: draw(table[field]) for field in sorted(chosen)}


def sources(src: Path) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just(src),
        st.just(str(src)),
        st.text(max_size=300),
        st.text(alphabet="a/", min_size=250, max_size=400),
        st.sampled_from(["app:v1", "reg.example.test/app@sha256:" + "a" * 64, "./nope", "~x"]),
        junk,
    )


def assert_nothing_created_on_refusal(exc: CloudshipError, calls: Calls) -> None:
    event(f"refused: {type(exc).__name__}")
    if isinstance(exc, ConfigError):  # bad input: refused before the build
        assert calls.created == [], f"{type(exc).__name__} after {calls.created}: {exc}"
    else:  # e.g. a pull of an unknown digest: the build may have run, nothing remote moved
        remote = [c for c in calls.created if c[0] in ("push", "repository", "revision")]
        assert remote == [], f"{type(exc).__name__} after {remote}: {exc}"
    assert exc.message, "an error without a message"


# -- ship() and plan() --------------------------------------------------------------------------


@settings(max_examples=80)
@given(kwargs=ship_kwargs(GOOD))
def test_valid_input_always_ships_as_given(src: Path, kwargs: dict[str, Any]) -> None:
    calls = Calls()
    kwargs.setdefault("port", 8000)
    shipment = api.ship(src, recording_target(calls), engine=RecordingEngine(calls), **kwargs)
    (spec,) = calls.of("deploy")
    assert shipment.name == spec.name == kwargs.get("name", "web")
    assert spec.port == kwargs["port"]
    assert spec.env == kwargs.get("env", {})
    assert spec.health_path == kwargs.get("health_path", "/")
    assert spec.cpu == kwargs.get("cpu")
    if "tag" in kwargs:
        assert shipment.tag == kwargs["tag"]


@settings(max_examples=150)
@given(data=st.data())
def test_ship_raises_only_cloudship_errors_and_creates_nothing_when_refused(
    src: Path, data: st.DataObject
) -> None:
    calls = Calls()
    source = data.draw(st.one_of(st.just(src), sources(src)), label="source")
    kwargs = data.draw(ship_kwargs(), label="kwargs")
    target = data.draw(
        st.one_of(st.just(recording_target(calls)), unknown_target, not_a_target), label="target"
    )
    try:
        shipment = api.ship(source, target, engine=RecordingEngine(calls), **kwargs)
    except CloudshipError as exc:
        assert_nothing_created_on_refusal(exc, calls)
    else:
        event("shipped")
        assert calls.of("deploy"), "a Shipment without a deploy"
        assert shipment.digest.startswith("sha256:")


BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "port": st.one_of(st.booleans(), st.integers(max_value=0), st.integers(min_value=65536)),
    "cpu": st.one_of(
        st.sampled_from([math.inf, -math.inf, math.nan, True, False]),
        st.floats(max_value=0.0099, allow_nan=False),
    ),
    "memory": st.one_of(
        st.sampled_from(["0", "0Mi", "-1Gi", "5Mi", "lots", "1"]), st.integers(), st.just([1])
    ),
    "timeout": st.one_of(
        st.sampled_from([math.nan, math.inf, True]), st.floats(max_value=0, allow_nan=False)
    ),
    "health_path": st.one_of(
        st.text(alphabet=string.ascii_letters, min_size=1, max_size=10),  # no leading '/'
        st.text(alphabet=" \t\n\r\x00#\x7f", min_size=1, max_size=3).map(lambda bad: "/a" + bad),
        st.just("/" + "a" * 1025),
    ),
    "env": st.one_of(
        st.lists(st.text(max_size=3), max_size=3),
        st.text(),
        st.dictionaries(env_name, st.integers(), min_size=1, max_size=2),
        st.dictionaries(st.from_regex(r"\A[0-9-][A-Z]*\Z"), st.text(), min_size=1, max_size=2),
    ),
    "name": st.one_of(
        st.text(min_size=64, max_size=80), st.integers(), st.from_regex(r"\A[A-Z_]+\Z")
    ),
    "tag": st.one_of(st.text(min_size=129, max_size=140), st.integers(), st.just("-x")),
    "platform": st.one_of(st.integers(), st.text(min_size=65, max_size=70), st.just("linux")),
    "replicas": st.one_of(st.booleans(), st.integers(max_value=-1)),
    "target": st.one_of(st.integers(), st.floats(), st.just([]), st.binary(min_size=1)),
}


@settings(max_examples=120)
@given(field=st.sampled_from(sorted(BAD_VALUES)), data=st.data())
def test_a_bad_value_is_refused_before_the_build_naming_its_field(
    src: Path, field: str, data: st.DataObject
) -> None:
    calls = Calls()
    value = data.draw(BAD_VALUES[field], label=field)
    kwargs: dict[str, Any] = {"port": 8000, "target": recording_target(calls), field: value}
    function = data.draw(st.sampled_from([api.ship, api.plan]), label="function")
    if function is api.plan and field == "timeout":
        function = api.ship
    with pytest.raises(ConfigError) as caught:
        function(src, engine=RecordingEngine(calls), **kwargs)
    assert field in caught.value.message and caught.value.fix
    assert calls.log == [], calls.log


@settings(max_examples=60)
@given(data=st.data())
def test_plan_never_creates_anything(src: Path, data: st.DataObject) -> None:
    calls = Calls()
    source = data.draw(sources(src), label="source")
    kwargs = data.draw(ship_kwargs(), label="kwargs")
    kwargs.pop("timeout", None)
    kwargs.pop("force", None)
    try:
        api.plan(source, recording_target(calls), engine=RecordingEngine(calls), **kwargs)
    except CloudshipError as exc:
        assert_nothing_created_on_refusal(exc, calls)
    remote = [c for c in calls.created if c[0] != "build"]
    assert remote == [], f"plan() created {remote}"


# -- status, logs, rollback, destroy -----------------------------------------------------------


@settings(max_examples=120)
@given(
    function=st.sampled_from(["status", "logs", "rollback", "destroy"]),
    name=st.one_of(label, st.text(max_size=70), junk),
    extra=st.fixed_dictionaries(
        {},
        optional={
            "tail": st.one_of(st.integers(-2, 500), junk),
            "to": st.one_of(st.from_regex(r"\Ar[0-9]{1,3}\Z"), st.text(max_size=300), junk),
            "timeout": st.one_of(st.floats(), st.integers(-1, 5), junk),
        },
    ),
)
def test_day2_functions_raise_only_cloudship_errors(
    function: str, name: Any, extra: dict[str, Any]
) -> None:
    calls = Calls()
    allowed = {"logs": {"tail"}, "rollback": {"to", "timeout"}}.get(function, set())
    kwargs = {key: value for key, value in extra.items() if key in allowed}
    try:
        getattr(api, function)(name, recording_target(calls), **kwargs)
    except ConfigError:
        event(f"{function}: ConfigError")
        assert calls.log == [], f"the runtime was called before the refusal: {calls.log}"
    except CloudshipError as exc:
        assert exc.message  # e.g. ServiceNotFoundError from the recording runtime
        event(f"{function}: {type(exc).__name__}")
    else:
        event(f"{function}: answered")


# -- the CLI ---------------------------------------------------------------------------------------

OPTION_VALUES = st.one_of(
    st.sampled_from(["8000", "0", "-1", "inf", "nan", "1e-12", "0.5", "512Mi", "0", "/health"]),
    st.sampled_from(["/\n", "/a b", "health", "x" * 300, "linux", "linux/amd64", "A=1", "A"]),
    st.text(alphabet=string.printable, max_size=12),
)
SHIP_OPTIONS = [
    "--name",
    "--tag",
    "--port",
    "--env",
    "--secret",
    "--health-path",
    "--cpu",
    "--memory",
    "--replicas",
    "--platform",
    "--timeout",
]


@st.composite
def cli_invocations(draw: st.DrawFn, src: Path) -> list[str]:
    command = draw(st.sampled_from(["ship", "plan", "status", "logs", "rollback", "destroy"]))
    if command in ("ship", "plan"):
        positional = draw(st.one_of(st.just(str(src)), st.text(min_size=1, max_size=300)))
        names = [o for o in SHIP_OPTIONS if command == "ship" or o != "--timeout"]
    else:
        positional = draw(st.one_of(label, st.text(min_size=1, max_size=70)))
        names = {"logs": ["--tail"], "rollback": ["--to", "--timeout"]}.get(command, [])
    args = [command, positional, "--target", "recording"]
    for option in draw(st.lists(st.sampled_from(names), max_size=4)) if names else []:
        args += [option, draw(OPTION_VALUES)]
    return args


@settings(max_examples=100)
@given(data=st.data())
def test_cli_exits_with_a_message_never_a_traceback(
    src: Path, data: st.DataObject, monkeypatch_engine: None
) -> None:
    args = data.draw(cli_invocations(src), label="argv")
    provider.calls.reset()
    result = CliRunner().invoke(cli, args, catch_exceptions=True)
    event(f"{args[0]}: exit {result.exit_code}")
    assert result.exit_code in (0, 1, 2), result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 2:  # bad input (ConfigError or a usage error): nothing moved
        assert provider.calls.created == [], provider.calls.created
        assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def monkeypatch_engine() -> Iterator[None]:
    """The CLI builds with ``Engine.shared()``: make that the recording engine."""
    from cloudship import engine as engine_module

    with pytest.MonkeyPatch.context() as patch:
        shared = staticmethod(lambda *_: provider.calls.shared_engine())
        patch.setattr(engine_module.Engine, "shared", shared)
        yield


# -- cloudship.toml ------------------------------------------------------------------------------

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["local", "8000", "/health", "512Mi", "Dockerfile", "../Dockerfile"]),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
APP_KEYS = ["name", "port", "health_path", "env", "cpu", "memory", "replicas", "platform"]
APP_KEYS += ["dockerfile", "build_args", "build_target", "unknown"]
TARGET_KEYS = ["registry", "runtime", "local", "aws", "x"]
APP_GOOD = {
    key: GOOD[key] for key in ("name", "port", "env", "health_path", "cpu", "memory", "platform")
} | {"replicas": st.just(1), "build_args": GOOD["env"], "dockerfile": st.just("Dockerfile")}


def toml_literal(value: Any) -> str:
    """``value`` as a TOML inline literal (JSON's escapes are valid in TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_literal(v)}" for k, v in value.items()) + "}"


@st.composite
def config_documents(draw: st.DrawFn) -> str:
    lines: list[str] = []
    if draw(st.booleans()):
        target = draw(st.one_of(st.just("recording"), toml_scalars))
        lines.append(f"target = {toml_literal(target)}")
    keys = draw(st.lists(st.sampled_from(APP_KEYS), max_size=4, unique=True))
    app = {key: draw(st.one_of(APP_GOOD.get(key, toml_values), toml_values)) for key in keys}
    lines.append("[app]")
    lines += [f"{key} = {toml_literal(value)}" for key, value in app.items()]
    for name in draw(st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True)):
        table = draw(st.dictionaries(st.sampled_from(TARGET_KEYS), toml_values, max_size=3))
        lines.append(f"[targets.{name}]")
        lines += [f"{key} = {toml_literal(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


@settings(max_examples=100)
@given(document=config_documents())
def test_config_files_parse_or_raise_config_error(
    tmp_path_factory: pytest.TempPathFactory, document: str
) -> None:
    folder = write_app(tmp_path_factory.mktemp("cfg"))
    (folder / "cloudship.toml").write_text(document, encoding="utf-8")
    calls = Calls()
    try:
        find_config(folder)
        api.ship(folder, recording_target(calls), engine=RecordingEngine(calls), port=8000)
    except CloudshipError as exc:
        assert_nothing_created_on_refusal(exc, calls)
    else:
        event("shipped")


@settings(max_examples=60)
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda depth, kind: ("a = " + kind[0] * depth + "1" + kind[1] * depth).encode(),
            st.integers(1, 3000),
            st.sampled_from([("[", "]"), ("{ b = ", " }")]),
        ),
        st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
)
def test_any_bytes_as_a_config_file_are_parsed_or_refused(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    folder = tmp_path_factory.mktemp("raw")
    (folder / "cloudship.toml").write_bytes(raw)
    try:
        find_config(folder)
    except ConfigError as exc:
        assert exc.fix
