"""Every constitution key changes what the system does, or the schema says it is documentation.

For each leaf key of ``constitution.models.Constitution`` (lists included, as ``key[]``):
either the probe table ``key_probes.yaml`` names a probe that shows a behaviour change when
the key's value is changed in a copy of the bundled constitution (``tests.constitution.probes``),
or the schema marks the key ``doc_only`` with a reason. A new key with neither fails here.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml

from constitution.models import Constitution
from tests.constitution import probes

KEYS = probes.leaf_keys()
_DATA = yaml.safe_load(probes.TABLE.read_text("utf-8"))
TABLE: dict[str, dict] = _DATA["probes"]
PENDING: dict[str, str] = _DATA.get("pending") or {}  # read, no probe yet: reported, never hidden
DOC_ONLY = {k: r for k in KEYS if (r := probes.doc_only_reason(Constitution, k))}
# The keys wave 1 left read by no code (issue #12): each must be probed, none documentation.
ONCE_UNREAD = (
    "protocol.atr.stale_hours",
    "protocol.atr.stale_multiplier",
    "hedging.triggers.vix_above",
)


def test_every_key_is_probed_or_marked_documentation_only():
    groups = (set(TABLE), set(DOC_ONLY), set(PENDING))
    neither = sorted(k for k in KEYS if not any(k in g for g in groups))
    twice = sorted(k for k in KEYS if sum(k in g for g in groups) > 1)
    assert neither == [] and twice == []


def test_the_table_names_only_keys_of_the_schema():
    assert sorted((set(TABLE) | set(PENDING)) - set(KEYS)) == []


def test_every_documentation_only_mark_gives_a_reason():
    assert all(len(reason) > 20 for reason in DOC_ONLY.values())


def test_the_keys_wave_1_left_unread_are_read_now():
    assert all(k in TABLE and k not in DOC_ONLY for k in ONCE_UNREAD)


def test_every_key_documented_in_the_reference_is_in_one_group():
    text = (probes.ROOT / "docs" / "constitution.md").read_text("utf-8")
    documented = set(re.findall(r"^\| `([A-Za-z0-9_.\[\]]+)` \|", text, re.M))
    sections = {k[:i] for k in KEYS for i in range(len(k)) if k[i] in ".["}
    leaves = documented - sections
    assert leaves and sorted(leaves - set(TABLE) - set(DOC_ONLY) - set(PENDING)) == []


@pytest.mark.parametrize("key", sorted(TABLE))
def test_changing_the_key_changes_behaviour(key):
    changed, seen = probes.changes_behaviour(key, TABLE[key])
    assert changed, f"{key}: {seen}"


def test_coverage_figures(capsys):
    kinds = Counter(p["probe"] for p in TABLE.values())
    with capsys.disabled():
        print(
            f"\nconstitution keys: {len(KEYS)}, probed {len(TABLE)} "
            f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
            f"documentation-only {len(DOC_ONLY)}, not yet probed {len(PENDING)}: "
            f"{', '.join(sorted(PENDING))}"
        )
    assert len(TABLE) + len(DOC_ONLY) + len(PENDING) == len(KEYS)
