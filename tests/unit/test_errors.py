import builtins
import inspect

import pytest

import cloudship
from cloudship import errors


def test_every_error_derives_from_root_and_is_exported() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == errors.__name__
    ]
    assert classes
    for cls in classes:
        assert issubclass(cls, errors.CloudshipError)
        assert cls.__name__ in errors.__all__
        assert cls.__name__ in cloudship.__all__
        assert cls.__name__ in errors.__doc__, f"{cls.__name__} missing from the drawn tree"


def test_fix_is_part_of_the_message() -> None:
    exc = errors.ConfigError("port unknown", fix="pass port=8000")
    assert str(exc) == "port unknown\n  fix: pass port=8000"
    assert exc.message == "port unknown" and exc.fix == "pass port=8000"


def test_timeout_error_is_also_builtin() -> None:
    assert issubclass(errors.ShipTimeoutError, builtins.TimeoutError)


def test_old_timeout_name_is_a_deprecated_alias_left_out_of_star_imports() -> None:
    with pytest.warns(DeprecationWarning, match="ShipTimeoutError"):
        from cloudship.errors import TimeoutError as old
    assert old is errors.ShipTimeoutError
    with pytest.warns(DeprecationWarning):
        assert cloudship.TimeoutError is errors.ShipTimeoutError  # type: ignore[attr-defined]
    assert "TimeoutError" not in cloudship.__all__ and "TimeoutError" not in errors.__all__
    namespace: dict[str, object] = {}
    exec("from cloudship import *", namespace)
    assert "TimeoutError" not in namespace  # the builtin is not shadowed


def test_health_check_failed_carries_tail_and_rollback() -> None:
    exc = errors.HealthCheckFailed("r2 unhealthy", log_tail=["boom"], rolled_back_to="r1")
    assert "r1 is serving again" in str(exc) and "boom" in str(exc)
    none = errors.HealthCheckFailed("r1 unhealthy", log_tail=[], rolled_back_to=None)
    assert "nothing to roll back to" in str(none)
