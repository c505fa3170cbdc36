"""A reference matcher: the compiled rules matched by plain Python loops, no durable-rules.

It exists to cross-check the durable runtime (engines.md §5 option b): the same strata, the
same normal-form atoms, the same missing-value semantics. Tests assert both give identical
decisions; a difference means a durable pitfall leaked through.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import product

from constitution.compile import CompiledRules
from constitution.models import Constitution
from engine.rules.durable import RawFiring
from engine.rules.interp import Env, value


class ReferenceMatcher:
    def __init__(self, compiled: CompiledRules, constitution: Constitution) -> None:
        self.compiled = compiled
        self.constitution = constitution

    def run_stratum(self, k: int, shards: Sequence[Sequence[dict]]) -> list[RawFiring]:
        facts = _merge(shards)
        out = []
        for index, rule in enumerate(self.compiled.rules):
            if rule.stratum != k:
                continue
            for bound in _bindings(rule.aliases, facts):
                env = Env(bound, self.constitution)
                for j, atoms in enumerate(rule.disjuncts):
                    if all(value(atom.source, env) is True for atom in atoms):
                        out.append(RawFiring(index, j, bound))
                        break
        return out


def _merge(shards: Sequence[Sequence[dict]]) -> dict[str, list[dict]]:
    by_id: dict[str, dict] = {}
    for shard in shards:
        for f in shard:
            by_id.setdefault(f["id"], f)
    out: dict[str, list[dict]] = {"m": [], "a": [], "u": [], "p": []}
    for f in by_id.values():
        out[f["t"]].append(f)
    return out


def _bindings(aliases: tuple[str, ...], facts: dict[str, list[dict]]) -> Iterator[dict[str, dict]]:
    if "p" in aliases:
        accounts = {a["acct"]: a for a in facts["a"]}
        underlyings = {u["sym"]: u for u in facts["u"]}
        for p in facts["p"]:
            bound = {"p": p}
            if "a" in aliases:
                bound["a"] = accounts[p["acct"]]
            if "u" in aliases:
                bound["u"] = underlyings[p["sym"]]
            if "m" in aliases:
                bound["m"] = facts["m"][0]
            yield bound
        return
    pools = [facts[a] for a in aliases]
    for combo in product(*pools):
        yield dict(zip(aliases, combo, strict=True))
