"""``finite_canonical_json`` is ``canonical_json`` byte for byte (orjson where it writes the
same text, the standard library where it would not)."""

from __future__ import annotations

import random
import struct
from datetime import UTC, date, datetime
from enum import StrEnum

import pytest

from constitution.canonical import canonical_json, encoded, finite_canonical_json


def _floats(n: int) -> list[float]:
    rng = random.Random(18)
    out: list[float] = []
    while len(out) < n:
        pick = rng.random()
        if pick < 0.4:  # every magnitude
            v = rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 300)
        elif pick < 0.8:  # prices, ratios and the tiny fractions rounding leaves (1.2e-05)
            v = round(rng.uniform(-1, 1) * 10.0 ** rng.randint(-9, 9), rng.randint(0, 12))
        else:  # any bit pattern, subnormals included
            v = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        if v == v and abs(v) != float("inf"):
            out.append(v)
    return out


EDGES = [0.0, -0.0, 1.0, 1e-4, 9.99e-5, 1e-5, -1e-7, 2.5e-05, 5e-324, 1e15, 1e16, 1e22, 1.7e308]


def test_every_float_is_written_as_the_standard_library_writes_it():
    values = _floats(60_000) + EDGES
    for chunk in range(0, len(values), 1000):
        data = {"v": values[chunk : chunk + 1000], "k": {str(i): v for i, v in enumerate(EDGES)}}
        assert finite_canonical_json(data) == canonical_json(data)
    for v in values[:5000] + EDGES:  # one at a time too: no float hides behind another's text
        assert finite_canonical_json([v]) == canonical_json([v]), v


def test_strings_of_every_escape_and_script():
    text = "".join(chr(c) for c in range(0, 0x250)) + '\u2028\u2029€𝄞"\\/ \x7f'
    data = {text: [text, {"é": text[::-1]}], "ascii": "plain", "": ""}
    assert finite_canonical_json(data) == canonical_json(data)


def test_keys_sort_as_python_sorts_them():
    keys = ["b", "a", "B", "é", "e", "𝄞", "\uffff", "aa", "a_", "a0", ""]
    data = {k: {k2: i for i, k2 in enumerate(keys)} for k in keys}
    assert finite_canonical_json(data) == canonical_json(data)


class _Kind(StrEnum):
    GEN = "gen"


@pytest.mark.parametrize(
    "value",
    [
        {"when": datetime(2026, 12, 4, 15, 30, tzinfo=UTC), "day": date(2026, 12, 4)},
        {"kind": _Kind.GEN},  # a str subclass
        {"big": 2**70, "small": -(2**65)},  # beyond 64 bits
        {"set": frozenset({"b", "a"}), "tuple": (1, 2.5, "x")},
        [True, False, None, 0, -1, 2**63 - 1, "0.00001 and 1e-7 in a string"],
    ],
    ids=["dates", "str-enum", "big-int", "set-and-tuple", "plain-and-lookalike"],
)
def test_what_orjson_does_not_write_alike_falls_back(value):
    assert finite_canonical_json(value) == canonical_json(value)


def test_a_non_string_key_is_encoded_as_the_standard_library_does():
    assert finite_canonical_json({2: "b", 1: "a"}) == canonical_json({2: "b", 1: "a"})


def test_the_benchmark_facts_and_their_digest():
    from tests.benchmarks.portfolios import many_accounts

    data = many_accounts(n_groups=40).model_dump(mode="json")
    assert encoded(data, finite=True) == encoded(data)
