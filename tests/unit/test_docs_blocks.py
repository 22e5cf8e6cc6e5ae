"""Every Python block in docs/ says whether CI runs it (see tests/docs/blocks.py)."""

from tests.docs.blocks import blocks


def test_every_block_is_marked() -> None:
    found = blocks()
    assert len(found) > 20, "the collector found the docs' blocks"
    unmarked = [b.id for b in found if b.kind is None]
    assert not unmarked, f"add <!-- docs-test: run|pytest|skip REASON --> above: {unmarked}"
    vague = [b.id for b in found if b.kind == "skip" and len(b.reason) < 10]
    assert not vague, f"a skipped block says why: {vague}"


def test_most_blocks_run() -> None:
    found = blocks()
    runs = [b for b in found if b.kind in ("run", "pytest")]
    assert len(runs) >= 10
