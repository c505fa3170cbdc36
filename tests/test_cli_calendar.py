"""``alluse evaluate`` on a day the market is closed (issue 14 item 11, D150): no entry is
decided, the entry day's sleeves are skipped with reason market_closed, and the user is told
plainly (on stderr, so ``--json`` stays one document) why and when the market next opens."""

from __future__ import annotations

import json

import pytest

from tests.execution.helpers import facts_file
from tests.test_cli import _alluse

CALM = "2026-11-19T10:15:00-05:00"  # the example's calm Thursday, inside Gen's window


def _evaluate(tmp_path, as_of: str):
    path = facts_file(
        tmp_path,
        "facts.yaml",
        (f"as_of: {CALM}", f"as_of: {as_of}"),
        ("expiry: 2026-11-20", "expiry: 2026-12-18"),  # still open on the later dates
    )
    run = _alluse("evaluate", "--json", "--facts", str(path))
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), run.stderr


def test_on_thanksgiving_no_entry_is_decided_and_the_market_is_said_to_be_closed(tmp_path):
    decision, err = _evaluate(tmp_path, "2026-11-26T10:15:00-05:00")
    kinds = {(a["kind"], a["params"].get("why")) for a in decision["actions"]}
    assert ("open_short_put", None) not in kinds
    assert ("skip_entry", "market_closed") in kinds
    assert "market is closed on 2026-11-26 (an NYSE holiday)" in err
    assert "next session (2026-11-27)" in err


def test_the_thursday_before_is_a_session_with_entries_and_no_note(tmp_path):
    decision, err = _evaluate(tmp_path, CALM)
    assert any(a["kind"] == "open_short_put" for a in decision["actions"])
    assert "closed" not in err


@pytest.mark.parametrize("as_of", ["2026-11-21T10:15:00-05:00", "2026-11-22T10:15:00-05:00"])
def test_on_a_weekend_nothing_is_entered_and_the_note_says_weekend(tmp_path, as_of):
    decision, err = _evaluate(tmp_path, as_of)
    assert not any(a["kind"].startswith("open_") for a in decision["actions"])
    assert "(a weekend)" in err and "next session (2026-11-23)" in err
