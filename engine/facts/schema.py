"""``python -m engine.facts.schema`` writes docs/facts.schema.json from the facts model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.facts.model import Facts

PATH = Path(__file__).resolve().parents[2] / "docs" / "facts.schema.json"


def render() -> str:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Facts.model_json_schema(mode="validation"),
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
