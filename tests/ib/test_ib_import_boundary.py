"""Only the IB adapters import the IB client library; the stub speaks bytes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"^\s*(from|import)\s+(ib_async|ib_insync)\b", re.MULTILINE)
ALLOWED = re.compile(r"^adapters/ib/[^/]*\.py$")


def test_only_ib_adapters_import_the_ib_client_library():
    offenders = []
    for top in ("constitution", "engine", "adapters", "scheduler", "tests"):
        for path in (ROOT / top).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if IMPORT.search(path.read_text(encoding="utf-8")) and not ALLOWED.match(rel):
                offenders.append(rel)
    assert offenders == []
