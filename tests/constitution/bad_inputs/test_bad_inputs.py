"""Every bad constitution file in ``cases.yaml``: refused with exit 2 (or accepted), no
traceback, each problem located at the right line and column with the right code and text."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Outcome, position_of, replace_once

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "cases.yaml").read_text("utf-8")
)


def _billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "schema_version: 1\n" + "\n".join(lines) + "\n"


def _content(case: dict, bundled_text: str, marker: Path) -> str | bytes:
    if case.get("generate") == "billion_laughs":
        return _billion_laughs()
    if "content_latin1" in case:
        return case["content_latin1"].encode("latin-1")
    if case.get("bom"):
        return b"\xef\xbb\xbf" + bundled_text.encode("utf-8")
    text = case["content"] if "content" in case else bundled_text
    for old, new in case.get("replace", ()):
        text = replace_once(text, old, new)
    text += case.get("append", "")
    return text.replace("{marker}", str(marker))


def _position(expected: dict, text: str) -> tuple[int, int]:
    if "at" in expected:
        return position_of(text, expected["at"], expected.get("nth", 0))
    return expected["line"], expected["col"]


def _matches(expected: dict, got: tuple[int, int, str, str], text: str) -> bool:
    line, col, code, rest = got
    if code != expected["code"]:
        return False
    if ("at" in expected or "line" in expected) and (line, col) != _position(expected, text):
        return False
    if "text" in expected and rest != expected["text"]:
        return False
    if "starts" in expected and not rest.startswith(expected["starts"]):
        return False
    return "contains" not in expected or expected["contains"] in rest


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case, validate, bundled_text, tmp_path):
    marker = tmp_path / "pwned"
    content = _content(case, bundled_text, marker)
    started = time.perf_counter()
    out: Outcome = validate(content)
    elapsed = time.perf_counter() - started
    text = content.decode("latin-1") if isinstance(content, bytes) else content
    located = out.located()
    assert out.code == case.get("exit", 2), out.lines
    if case.get("exactly"):
        assert len(located) == len(case["expect"]), located
        for expected, got in zip(case["expect"], located, strict=True):
            assert _matches(expected, got, text), (expected, got)
    else:
        for expected in case.get("expect", ()):
            assert any(_matches(expected, got, text) for got in located), (expected, located)
    if "codes" in case:
        assert out.codes() == set(case["codes"]), located
    if case.get("marker"):
        assert not marker.exists()
    if "within_seconds" in case:
        assert elapsed < case["within_seconds"]


def test_every_case_checks_something():
    """A case with nothing to check would pass whatever validate printed."""
    for case in CASES:
        assert case.get("expect") or case.get("codes") or case.get("exit", 2) == 0, case["id"]
