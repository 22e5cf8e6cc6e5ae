"""The core's revision ids and rollback rule, which every runtime uses."""

from __future__ import annotations

import pytest

from cloudship.errors import ConfigError, RevisionNotFoundError, ServiceNotFoundError
from cloudship.revisions import choose_rollback, is_unchanged, parse_revision, revision_id
from cloudship.runtime import Revision


def rev(number: int, state: str, native: str | None = None) -> Revision:
    return Revision(
        number=number,
        native_id=native or f"web--r{number}-ab12",
        image=f"reg/web@sha256:{number:064x}",
        digest=f"sha256:{number:064x}",
        state=state,  # type: ignore[arg-type]
    )


def test_ids_are_r_numbers_everywhere() -> None:
    assert revision_id(3) == "r3"
    assert rev(7, "standby").id == "r7"
    assert rev(7, "standby").model_dump()["id"] == "r7"  # in --json output too
    assert [parse_revision(t) for t in ("r2", "R2", "2", " r2 ")] == [2, 2, 2, 2]


@pytest.mark.parametrize("bad", [None, True, 2.5, ["r1"]])
def test_a_revision_of_the_wrong_type_is_bad_input(bad: object) -> None:
    with pytest.raises(ConfigError, match="revision"):
        parse_revision(bad)


def test_default_is_the_newest_earlier_healthy_revision_never_a_failed_one() -> None:
    history = [rev(4, "serving"), rev(3, "failed"), rev(2, "standby"), rev(1, "standby")]
    assert choose_rollback("web", history, None).id == "r2"


def test_default_with_nothing_serving_is_below_the_newest() -> None:
    history = [rev(3, "failed"), rev(2, "stopped"), rev(1, "standby")]
    assert choose_rollback("web", history, None).id == "r2"


def test_no_earlier_healthy_revision_says_which_there_are() -> None:
    with pytest.raises(RevisionNotFoundError, match=r"no healthy revision older than r2") as info:
        choose_rollback("web", [rev(2, "serving"), rev(1, "failed")], None)
    assert "r1 (failed)" in str(info.value)


def test_to_accepts_rn_digits_and_the_clouds_own_id() -> None:
    history = [rev(3, "serving"), rev(2, "standby"), rev(1, "standby", native="arn:td/web:1")]
    assert choose_rollback("web", history, "r2").id == "r2"
    assert choose_rollback("web", history, "1").id == "r1"
    assert choose_rollback("web", history, "arn:td/web:1").id == "r1"
    assert choose_rollback("web", history, "r3").id == "r3"  # the serving one: a no-op


def test_to_a_failed_revision_is_refused_with_the_healthy_ones() -> None:
    history = [rev(3, "serving"), rev(2, "failed"), rev(1, "standby")]
    with pytest.raises(RevisionNotFoundError, match="failed its health gate") as info:
        choose_rollback("web", history, "r2")
    assert "r3 (serving), r1 (standby)" in str(info.value)


def test_to_an_unknown_revision_lists_the_known_ones() -> None:
    history = [rev(2, "serving"), rev(1, "standby")]
    for unknown in ("r9", "nosuchrev"):
        with pytest.raises(RevisionNotFoundError, match="choose one of: r2 \\(serving\\)"):
            choose_rollback("web", history, unknown)


def test_no_revisions_is_service_not_found() -> None:
    with pytest.raises(ServiceNotFoundError):
        choose_rollback("web", [], None)


def test_unchanged_needs_the_same_fingerprint_and_no_force() -> None:
    assert is_unchanged("abc", "abc", force=False)
    assert not is_unchanged("abc", "abc", force=True)
    assert not is_unchanged(None, "abc", force=False)
    assert not is_unchanged("abd", "abc", force=False)
