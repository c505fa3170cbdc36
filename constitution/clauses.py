"""The clause catalogue of Constitution v1.3 (``constitution/clauses.yaml``), typed.

Each clause (§0-§17) lists its items with their status (implemented, partial, out-of-scope),
the constitution keys and rules (fnmatch patterns over rule ids) that implement them and the
tests that prove them beyond the scenarios. ``scheduler.clause_map`` renders docs/clauses.md
from it and checks it against the rules, the keys, the tests and the scenarios.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from constitution.yamlsafe import load_file

CATALOGUE = Path(__file__).with_name("clauses.yaml")
Status = Literal["implemented", "partial", "out-of-scope"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Item(_Model):
    text: str
    status: Status
    reason: str = ""
    keys: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()  # fnmatch patterns over rule ids of this clause's section
    tests: tuple[str, ...] = ()  # tests/...py or tests/...py::test_name

    @model_validator(mode="after")
    def _reason_when_not_done(self) -> Item:
        if self.status != "implemented" and not self.reason:
            raise ValueError(f"'{self.text}' is {self.status}: say why (reason)")
        return self


class Clause(_Model):
    id: str = Field(pattern=r"^§\d+$")
    title: str
    items: tuple[Item, ...] = Field(min_length=1)


class Catalogue(_Model):
    clauses: tuple[Clause, ...]


def load_catalogue(path: Path = CATALOGUE) -> Catalogue:
    return Catalogue.model_validate(load_file(path).data)
