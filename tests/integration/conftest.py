import pytest

#: Tests that build this repository's own examples/ folders. A build's tag is derived from its
#: source path (cloudship/api.py), so two pytest-xdist workers building examples/monitor-app at
#: once would race on one tag; these share one worker (``--dist loadgroup``, scripts/test).
EXAMPLES_GROUP = "repository-examples"
_EXAMPLE_MODULES = ("test_example_ship_aws.py", "test_example_ship_azure.py")
#: Tests on moto's server (cloudship_moto). Each worker would start its own, and moto's
#: per-test reset reloads every AWS managed policy (MOTO_IAM_LOAD_MANAGED_POLICIES): several at
#: once on a 2-core runner push the reset past its 10 s timeout. One worker runs them all.
MOTO_GROUP = "moto"


def _builds_the_examples(item: pytest.Item) -> bool:
    if item.path.name in _EXAMPLE_MODULES:
        return True
    callspec = getattr(item, "callspec", None)
    block = callspec.params.get("block") if callspec else None
    return block is not None and "examples/" in block.code


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
        if _builds_the_examples(item):
            item.add_marker(pytest.mark.xdist_group(EXAMPLES_GROUP))
        elif "cloudship_moto" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(MOTO_GROUP))
