"""One definition of what a build takes: ``BuildOptions`` (the keyword arguments of every
engine's ``build``) and ``BuildRequest`` (the same with defaults) cannot drift apart."""

from __future__ import annotations

import dataclasses
import inspect
from typing import get_type_hints

from cloudship.engine import BuildOptions, BuildRequest, Engine
from cloudship.testing.memory import MemoryEngine
from tests.unit.recording import OracleEngine


def test_build_options_and_build_request_list_the_same_names_and_types() -> None:
    assert get_type_hints(BuildOptions) == get_type_hints(BuildRequest)
    assert BuildOptions.__required_keys__ == {"tag"}
    required = {
        f.name for f in dataclasses.fields(BuildRequest) if f.default is dataclasses.MISSING
    }
    assert required == {"tag"}


def test_every_engine_takes_the_build_options_and_nothing_else() -> None:
    for engine in (Engine, MemoryEngine, OracleEngine):
        parameters = inspect.signature(engine.build).parameters
        assert list(parameters) == ["self", "context", "on_event", "options"], engine
        assert parameters["options"].annotation == "Unpack[BuildOptions]", engine
