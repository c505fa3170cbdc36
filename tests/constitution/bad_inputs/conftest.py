"""Helpers for the bad-input tests (the cases themselves are data: cases.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from scheduler.cli import main

LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>[a-z-]+): (?P<rest>.*)$")


@dataclass
class Outcome:
    code: int
    lines: list[str]
    stdout: str

    def located(self) -> list[tuple[int, int, str, str]]:
        """(line, col, code, rest) of every FILE:LINE:COL: CODE: line printed."""
        out = []
        for ln in self.lines:
            m = LOCATED.match(ln)
            if m:
                out.append((int(m["line"]), int(m["col"]), m["code"], m["rest"]))
        return out

    def codes(self) -> set[str]:
        return {c for _, _, c, _ in self.located()}


@pytest.fixture
def validate(tmp_path, capsys):
    def run(content: str | bytes, name: str = "edited.yaml") -> Outcome:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        code = main(["validate", str(path)])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Outcome(code, captured.err.splitlines(), captured.out)

    return run


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must appear exactly once in v1.3.yaml"
    return text.replace(old, new)


def position_of(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, col) of the nth occurrence of ``needle``."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col
