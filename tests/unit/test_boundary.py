"""Every bad input is refused at the boundary: a ConfigError/SourceError that names the field
and the fix, raised before anything is built, pushed or started (issue 8, item 7).

Each case runs the real ``ship()``/``plan()``/day-2 functions against a recording target and
engine (tests/unit/recording.py) and asserts the error's type, that its message names the
field, that it carries a fix, and that no double was asked to build, tag, push, create a
repository or deploy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from cloudship import api
from cloudship.config import MAX_CONFIG_DEPTH, find_config
from cloudship.errors import CloudshipError, ConfigError, SourceError
from cloudship.images import is_loopback_host
from cloudship.options import read_options
from cloudship.runtime import ServiceSpec
from tests.conftest import write_app
from tests.unit.recording import Calls, RecordingEngine, recording_target


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No config file or CLOUDSHIP_* variable from the machine running the tests."""
    for key in list(os.environ):
        if key.startswith("CLOUDSHIP_"):
            monkeypatch.delenv(key)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    yield


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return write_app(tmp_path / "web")


@dataclass
class Shipper:
    """``ship`` or ``plan`` on the recording target and engine."""

    kind: str
    calls: Calls

    def __call__(self, source: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("target", recording_target(self.calls))
        function = getattr(api, self.kind)
        return function(source, engine=RecordingEngine(self.calls), **kwargs)


@pytest.fixture(params=["ship", "plan"])
def shipper(request: pytest.FixtureRequest, calls: Calls) -> Shipper:
    return Shipper(request.param, calls)


def refused(
    calls: Calls, error: type[CloudshipError], field: str, action: Callable[[], object]
) -> CloudshipError:
    with pytest.raises(error) as caught:
        action()
    exc = caught.value
    assert field in exc.message, f"the message does not name {field!r}: {exc.message}"
    assert exc.fix, "no fix given"
    assert calls.created == [], f"something was created: {calls.created}"
    assert calls.of("build") == []
    return exc


def test_the_doubles_ship_valid_input(shipper: Shipper, src: Path, calls: Calls) -> None:
    # The recording target accepts good input, so a refusal below is the boundary's doing.
    shipper(src, port=8000, cpu=0.25, memory="512Mi", health_path="/health?deep=1", env={"A": ""})
    assert calls.of("build")
    assert calls.of("deploy") or calls.of("plan")


# -- ship()/plan() arguments ------------------------------------------------------------------


@pytest.mark.parametrize("source", ["x" * 300, "a/" + "b" * 256, None, 123, b"web", "", "a\x00b"])
def test_source_of_wrong_type_or_length(shipper: Shipper, calls: Calls, source: Any) -> None:
    exc = refused(calls, SourceError, "source", lambda: shipper(source))
    assert "Errno" not in str(exc)


BAD_ARGUMENTS: list[tuple[str, Any]] = [
    ("env", ["A"]),
    ("env", "A=1"),
    ("env", {"A": 1}),
    ("env", {"BAD-NAME": "x"}),
    ("env", {1: "x"}),
    ("env", {"A": "nul\x00byte"}),
    ("secrets", ["TOKEN"]),
    ("secrets", {"TOKEN": 12345}),
    ("target", 123),
    ("target", 1.5),
    ("target", []),
    ("target", ["local", 3]),
    ("target", "no spaces please"),
    ("health_path", "/\n"),
    ("health_path", "health"),
    ("health_path", "/a b"),
    ("health_path", "/a#frag"),
    ("health_path", "//evil.example/x"),
    ("health_path", "/" + "a" * 2000),
    ("health_path", "/caf\u00e9"),
    ("health_path", "/%zz"),
    ("health_path", 5),
    ("cpu", math.inf),
    ("cpu", -math.inf),
    ("cpu", math.nan),
    ("cpu", 1e-12),
    ("cpu", 0),
    ("cpu", -1),
    ("cpu", True),
    ("cpu", "1"),
    ("cpu", 1e9),
    ("memory", "0"),
    ("memory", "0Mi"),
    ("memory", "-1Gi"),
    ("memory", "1"),
    ("memory", "lots"),
    ("memory", 512),
    ("memory", "99999999999999999999Ti"),
    ("port", True),
    ("port", False),
    ("port", 0),
    ("port", 70000),
    ("port", "8000"),
    ("port", 8000.0),
    ("timeout", 0),
    ("timeout", -1),
    ("timeout", math.nan),
    ("timeout", math.inf),
    ("timeout", True),
    ("timeout", "30"),
    ("name", 123),
    ("name", "x" * 64),
    ("name", "Web_App"),
    ("tag", "a" * 200),
    ("tag", 5),
    ("tag", "-leading-dash"),
    ("platform", 3),
    ("platform", "linux/" + "a" * 100),
    ("platform", "linux"),
    ("platform", "linux/amd64 "),
    ("replicas", True),
    ("replicas", -1),
    ("replicas", 1.5),
    ("force", "yes"),
    ("force", 1),
    ("on_event", 5),
]


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [("ship", field, value) for field, value in BAD_ARGUMENTS]
    + [("plan", f, v) for f, v in BAD_ARGUMENTS if f not in ("force", "timeout")],
)
def test_bad_argument_names_the_field_and_the_fix(
    src: Path, calls: Calls, kind: str, field: str, value: Any
) -> None:
    shipper = Shipper(kind, calls)
    kwargs = {"port": 8000, field: value}
    exc = refused(calls, ConfigError, field, lambda: shipper(src, **kwargs))
    if field != "target":  # the target's own message lists the names to use instead
        assert f"{field}:" in (exc.fix or ""), "the fix does not say what the field accepts"


def test_ship_refuses_bad_force_and_timeout(src: Path, calls: Calls) -> None:
    for field, value in [("force", "yes"), ("timeout", -1), ("timeout", math.nan)]:
        refused(
            calls,
            ConfigError,
            field,
            lambda f=field, v=value: api.ship(
                src, recording_target(calls), engine=RecordingEngine(calls), **{f: v}
            ),
        )


@pytest.mark.parametrize(
    "secrets",
    [
        {"TOKEN": 123456789},
        {"bad-name": "s3cr3t-value"},
        {"TOKEN": "s3cr3t\x00value"},
    ],
)
def test_secret_values_are_never_echoed(src: Path, calls: Calls, secrets: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        api.ship(src, recording_target(calls), engine=RecordingEngine(calls), secrets=secrets)
    text = str(caught.value) + repr(caught.value)
    assert "s3cr3t" not in text and "123456789" not in text
    assert "secrets" in caught.value.message
    assert calls.created == []


def test_secret_str_values_are_accepted(src: Path, calls: Calls) -> None:
    api.ship(
        src,
        recording_target(calls),
        engine=RecordingEngine(calls),
        port=8000,
        secrets={"TOKEN": SecretStr("x"), "OTHER": "y"},
    )
    (spec,) = calls.of("deploy")
    assert spec.secrets["OTHER"].get_secret_value() == "y"


# -- day-2 functions ----------------------------------------------------------------------------


DAY2: list[tuple[str, dict[str, Any], str]] = [
    ("status", {"name": 123}, "name"),
    ("status", {"name": "x" * 64}, "name"),
    ("status", {"name": "Bad_Name"}, "name"),
    ("status", {"name": "web", "target": 123}, "target"),
    ("logs", {"name": None}, "name"),
    ("logs", {"name": "web", "tail": 0}, "tail"),
    ("logs", {"name": "web", "tail": -5}, "tail"),
    ("logs", {"name": "web", "tail": True}, "tail"),
    ("logs", {"name": "web", "tail": "10"}, "tail"),
    ("logs", {"name": "web", "tail": 2.5}, "tail"),
    ("logs", {"name": "web", "tail": None}, "tail"),  # found by test_properties' fuzzing
    ("follow_logs", {"name": "web", "tail": -1}, "tail"),  # 0 is valid: new lines only
    ("follow_logs", {"name": "web", "tail": None}, "tail"),
    ("follow_logs", {"name": "Bad_Name"}, "name"),
    ("rollback", {"name": "web", "to": 5}, "to"),
    ("rollback", {"name": "web", "to": "r 2"}, "to"),
    ("rollback", {"name": "web", "to": "r" * 300}, "to"),
    ("rollback", {"name": "web", "timeout": -1}, "timeout"),
    ("rollback", {"name": "web", "timeout": math.nan}, "timeout"),
    ("rollback", {"name": "web", "on_event": "print"}, "on_event"),
    ("rollback", {"name": ["web"]}, "name"),
    ("destroy", {"name": None}, "name"),
    ("destroy", {"name": "-web"}, "name"),
    ("destroy", {"name": "web", "target": ["local"]}, "target"),
]


@pytest.mark.parametrize(("function", "kwargs", "field"), DAY2)
def test_day2_arguments_are_checked_before_any_remote_call(
    calls: Calls, function: str, kwargs: dict[str, Any], field: str
) -> None:
    kwargs = {"target": recording_target(calls), **kwargs}
    refused(calls, ConfigError, field, lambda: getattr(api, function)(**kwargs))
    assert calls.log == [], f"the runtime was called: {calls.log}"


# -- cloudship.toml ------------------------------------------------------------------------------


def _with_config(src: Path, content: str | bytes) -> Path:
    path = src / "cloudship.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


CONFIGS: list[tuple[str | bytes, str]] = [
    (b'target = "local"\n[app]\nname = "caf\xe9"\n', "UTF-8"),
    (b"\xff\xfe\x00t\x00a\x00r", "UTF-8"),
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "levels deep"),
    ("a = " + "[" * (MAX_CONFIG_DEPTH + 2) + "]" * (MAX_CONFIG_DEPTH + 2) + "\n", "levels deep"),
    ("x = " + "{ y = " * 40 + "1" + " }" * 40 + "\n", "levels deep"),
    ('[targets.x]\nregistry = "local"\nruntime = "local"\nlocal = []\n', "targets.x"),
    ('[targets.x]\nregistry = "local"\nruntime = "local"\nlocal = 3\n', "local"),
    ("[targets.x]\nregistry = 3\nruntime = 'local'\n", "registry"),
    ("[targets.x]\nruntime = 'local'\n", "registry"),
    ("[targets]\nx = 5\n", "targets.x"),
    ("target = 123\n", "target"),
    ("app = 3\n", "app"),
    ("[app]\nport = true\n", "port"),
    ('[app]\nport = "8000"\n', "port"),
    ("[app]\nport = 0\n", "port"),
    ("[app]\ncpu = inf\n", "cpu"),
    ("[app]\ncpu = nan\n", "cpu"),
    ("[app]\ncpu = 1e-12\n", "cpu"),
    ('[app]\nmemory = "0"\n', "memory"),
    ('[app]\nhealth_path = "/\\n"\n', "health_path"),
    ('[app]\nenv = ["A"]\n', "env"),
    ("[app]\nenv = { A = 1 }\n", "env"),
    ('[app]\nname = "Not A Label"\n', "name"),
    ('[app]\nplatform = "linux"\n', "platform"),
    ("[app]\nreplicas = true\n", "replicas"),
    ("[app]\ndockerfile = 5\n", "dockerfile"),
    ('[app]\nbuild_args = { "A-B" = "x" }\n', "build_args"),
    ('[app]\nbuild_target = "has space"\n', "build_target"),
    ("[app]\nunknown_key = 1\n", "unknown_key"),
    ("not toml at all = = =\n", "not valid TOML"),
    ("# pad\n" * 200_000, "larger than"),
]


@pytest.mark.parametrize(("content", "named"), CONFIGS)
def test_bad_config_file_is_a_config_error(
    shipper: Shipper, src: Path, calls: Calls, content: str | bytes, named: str
) -> None:
    _with_config(src, content)
    exc = refused(calls, ConfigError, named, lambda: shipper(src, port=8000))
    assert "Traceback" not in str(exc)


def test_config_errors_never_echo_values(src: Path, calls: Calls) -> None:
    _with_config(src, '[app]\nport = "s3cr3t-port"\nenv = { A = ["s3cr3t-env"] }\n')
    with pytest.raises(ConfigError) as caught:
        find_config(src)
    assert "s3cr3t" not in str(caught.value)
    assert "[app]" in caught.value.message and "port" in caught.value.message


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("CLOUDSHIP_APP_ENV", "not json", "CLOUDSHIP_APP_ENV"),
        ("CLOUDSHIP_APP_PORT", "true", "port"),
        ("CLOUDSHIP_APP_PORT", "0", "port"),
        ("CLOUDSHIP_APP_CPU", "inf", "cpu"),
        ("CLOUDSHIP_APP_HEALTH_PATH", "/a b", "health_path"),
        ("CLOUDSHIP_APP_DOCKERFILE", "/etc/passwd", "dockerfile"),
    ],
)
def test_bad_environment_variable(
    shipper: Shipper,
    src: Path,
    calls: Calls,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    named: str,
) -> None:
    monkeypatch.setenv(variable, value)
    refused(calls, ConfigError, named, lambda: shipper(src))


def test_environment_numbers_stay_strings_to_parse(
    src: Path, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDSHIP_APP_PORT", "8000")  # env values are text: lax, not strict
    monkeypatch.setenv("CLOUDSHIP_APP_CPU", "0.5")
    api.ship(src, recording_target(calls), engine=RecordingEngine(calls))
    (spec,) = calls.of("deploy")
    assert spec.cpu == 0.5
    assert spec.port == 8000


# -- the Dockerfile stays inside the build context ----------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "Dockerfile"
    secret.parent.mkdir()
    secret.write_text("FIRST-LINE-SECRET root:x:0:0\n")
    return secret


@pytest.mark.parametrize(
    "dockerfile",
    ["../../../../etc/passwd", "../outside/Dockerfile", "/etc/passwd", "~/Dockerfile"],
)
def test_dockerfile_outside_the_context_is_refused_unread(
    shipper: Shipper, src: Path, calls: Calls, outside: Path, dockerfile: str
) -> None:
    _with_config(src, f"[app]\ndockerfile = {dockerfile!r}\n".replace("'", '"'))
    exc = refused(calls, SourceError, "dockerfile", lambda: shipper(src, port=8000))
    assert "FIRST-LINE-SECRET" not in str(exc) and "root:x" not in str(exc)


def test_dockerfile_absolute_path_to_outside(
    shipper: Shipper, src: Path, calls: Calls, outside: Path
) -> None:
    _with_config(src, f'[app]\ndockerfile = "{outside}"\n')
    exc = refused(calls, SourceError, "dockerfile", lambda: shipper(src, port=8000))
    assert "FIRST-LINE-SECRET" not in str(exc)


def test_dockerfile_symlink_escaping_the_context(
    shipper: Shipper, src: Path, calls: Calls, outside: Path
) -> None:
    (src / "Dockerfile.link").symlink_to(outside)
    _with_config(src, '[app]\ndockerfile = "Dockerfile.link"\n')
    exc = refused(calls, SourceError, "outside", lambda: shipper(src, port=8000))
    assert "FIRST-LINE-SECRET" not in str(exc)


def test_dockerfile_symlink_inside_the_context_builds(
    shipper: Shipper, src: Path, calls: Calls
) -> None:
    (src / "docker").mkdir()
    (src / "docker" / "Dockerfile.prod").symlink_to(src / "Dockerfile")
    _with_config(src, '[app]\ndockerfile = "docker/Dockerfile.prod"\n')
    shipper(src, port=8000)
    assert calls.of("build")[0]["dockerfile"] == "docker/Dockerfile.prod"


def test_missing_dockerfile_is_still_a_source_error(shipper: Shipper, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="has no Dockerfile"):
        shipper(empty, port=8000)


# -- loopback is decided by parsing the address ----------------------------------------------------


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:5000", True),
        ("127.255.255.254:443", True),
        ("localhost", True),
        ("localhost:5000", True),
        ("[::1]", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("127.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("localhost.evil.example", False),
        ("evil-localhost", False),
        ("128.0.0.1", False),
        ("0.0.0.0:5000", False),
        ("127.1", False),
        ("[::1", False),
        ("[::1]x", False),
        ("[127.0.0.1]:5000", False),
        ("127.0.0.1:port", False),
        ("::ffff:127.0.0.1", False),
        ("registry.example.com:5000", False),
        ("", False),
    ],
)
def test_is_loopback_host(address: str, loopback: bool) -> None:
    assert is_loopback_host(address) is loopback


# -- the service spec itself, for runtimes and third-party callers -------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", True),
        ("cpu", math.inf),
        ("cpu", 1e-12),
        ("memory", "0"),
        ("health_path", "/\n"),
        ("env", {"A": 1}),
        ("name", "x" * 64),
    ],
)
def test_service_spec_refuses_what_the_boundary_refuses(field: str, value: Any) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=field):
        ServiceSpec(**{"name": "web", "port": 8000, field: value})


def test_options_report_every_bad_field_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        read_options({"port": True, "cpu": math.inf, "timeout": -1})
    for field in ("port", "cpu", "timeout"):
        assert f"{field}:" in caught.value.message and f"{field}:" in (caught.value.fix or "")


# -- the CLI: the same refusals, as exit code 2 and a message, never a traceback ------------------


@pytest.fixture
def cli_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """``--target recording`` and ``Engine.shared()`` record into the returned calls."""
    from cloudship import engine as engine_module
    from cloudship.targets import KNOWN_TARGETS, _Known
    from tests.unit.recording import provider

    provider.calls.reset()
    known = _Known("tests.unit.recording:provider", (), None)
    monkeypatch.setitem(KNOWN_TARGETS, "recording", known)
    shared = staticmethod(lambda *_: provider.calls.shared_engine())
    monkeypatch.setattr(engine_module.Engine, "shared", shared)
    return provider.calls


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["ship", "{src}", "--cpu", "inf"], "cpu"),
        (["ship", "{src}", "--cpu", "1e-12"], "cpu"),
        (["ship", "{src}", "--memory", "0"], "memory"),
        (["ship", "{src}", "--port", "0"], "port"),
        (["ship", "{src}", "--timeout", "-1"], "timeout"),
        (["ship", "{src}", "--timeout", "nan"], "timeout"),
        (["ship", "{src}", "--health-path", "/\n"], "health_path"),
        (["ship", "{src}", "--env", "8000"], "--env"),
        (["ship", "{src}", "--env", "BAD-NAME=1"], "env"),
        (["ship", "{src}", "--name", "Not_A_Label"], "name"),
        (["ship", "x" * 300], "source"),
        (["plan", "{src}", "--platform", "linux"], "platform"),
        (["status", "Bad_Name"], "name"),
        (["logs", "web", "--tail", "0"], "tail"),
        (["rollback", "web", "--to", "r 2"], "to"),
        (["rollback", "web", "--timeout", "0"], "timeout"),
        (["destroy", "web_"], "name"),
    ],
)
def test_cli_refuses_with_exit_2_naming_the_field(
    cli_calls: Calls, src: Path, args: list[str], named: str
) -> None:
    from typer.testing import CliRunner

    from cloudship.cli import app

    argv = [arg.replace("{src}", str(src)) for arg in args] + ["--target", "recording"]
    if args[0] in ("status", "logs", "rollback", "destroy"):
        argv = [argv[0], "--target", "recording", *argv[1:-2]]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "ConfigError" in result.output or "SourceError" in result.output
    assert named in result.output and "fix:" in result.output
    assert cli_calls.created == []
