"""The JSON Schema of constitution files, generated from the pydantic models.

``python -m constitution.schema`` rewrites ``constitution/schema.json``; a test fails when the
committed file drifts from the models. Editors use it for completion and inline errors via
``# yaml-language-server: $schema=./schema.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from constitution.models import Constitution

SCHEMA_PATH = Path(__file__).with_name("schema.json")
SCHEMA_ID = "https://alluse.invalid/constitution/schema-v1.json"


def generate() -> dict:
    schema = Constitution.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render() -> str:
    return json.dumps(generate(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
