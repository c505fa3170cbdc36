"""Reading a facts document (YAML or JSON) with every problem located by path."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from constitution.errors import FactsInvalid
from constitution.located import pydantic_problems
from constitution.yamlsafe import Loaded, load_file, load_text
from engine.facts.model import Facts, consistency_problems


def load_facts(path: str | Path) -> Facts:
    return validate_loaded(load_file(path))


def load_facts_text(text: str, source: str = "<facts>") -> Facts:
    return validate_loaded(load_text(text, source))


def facts_from_data(data: dict, source: str = "<facts>") -> Facts:
    """Validate already-parsed data (e.g. an overlay in a scenario file)."""
    return validate_loaded(Loaded(source, data, {}, ""))


def validate_loaded(loaded: Loaded) -> Facts:
    """Facts from a loaded YAML/JSON document, every problem located in it."""
    if not isinstance(loaded.data, dict):
        raise FactsInvalid(
            [loaded.problem((), "type", "a facts document is a mapping (as_of, market, accounts)")]
        )
    try:
        facts = Facts.model_validate(loaded.data)
    except ValidationError as exc:
        raise FactsInvalid(pydantic_problems(exc, loaded)) from None
    problems = [loaded.problem(path, code, msg) for path, code, msg in consistency_problems(facts)]
    if problems:
        raise FactsInvalid(problems)
    return facts
