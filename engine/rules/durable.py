"""The durable-rules runtime. The ONLY module in ALL-USE that imports ``durable``.

durable-rules 2.0.28 is unmaintained and has measured hazards (../shared/reference/engines.md).
Each workaround below is named by its pitfall number and covered by a test in
tests/engine/test_durable_pitfalls.py:

* P2  events fire one rule only          -> facts only (``assert_facts``), never ``post``.
* P3  a fact no rule matches raises       -> one batch per session plus a lowest-priority
                                              catch-all rule, so every fact is "handled".
                                              (Asserting one by one and ignoring "not handled"
                                              is faster but leaves sessions that crash the
                                              process when deleted or reused; see below.)
* P4  background threads finish later    -> ``QuietHost`` starts no dispatch threads.
* P5  not thread-safe per session         -> one lock around every call into the host.
* P6  action exceptions are swallowed     -> actions only append; the returned state is
                                              checked for ``exception`` and fails the run.
* P7  slow actions break the chain        -> actions do no I/O: they record a firing.
* P8  32-bit hash -> false duplicates     -> explicit unique ids; shards of bounded size;
                                              on MessageObservedException the shard splits.
* P9  ``6e-05`` rejected by the parser     -> exponent floats rewritten as ``6.0e-05``.
* P10 joins on ``id`` never match         -> joins use ``acct``/``sym`` (vocabulary.physical).
* P11 definitions unchecked               -> rules are validated and typed before compiling.
* P12 firing order undefined              -> firings are sorted after the run.
* P13 rulesets immutable, never freed     -> one registration per constitution digest.
* P14 memory per resident fact            -> every session's state is deleted after use.
* P15 state re-asserted as a fact         -> no rule uses state.
* P18-P22 a comparison with another     -> no such comparison is given to durable: each is
      fact's field inside durable             left out of the pattern and judged on the
      segfaults (P18, P22), fails the         firing's bound facts in Python (``_Guarded``, by
      assertion and then aborts the           the interpreter's comparison, engine.rules.interp),
      process (P20), or is misjudged          so durable matches constants and the entity joins
      (P19: 0.0 vs 0; P21: after an ``$or``)  (``acct``, ``sym``) only. Should an assertion still
                                              fail, its session is never deleted or reused (its
                                              id is retired): EngineFailure, not an abort.
"""

from __future__ import annotations

import json as _json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from durable import engine as _durable

from constitution.compile import (
    Arithmetic,
    Atom,
    CompiledRule,
    CompiledRules,
    FieldRef,
    Operand,
    arith,
    durable_rule,
    is_joined,
)
from constitution.errors import StopError
from engine.rules.interp import compare

MAX_FACTS_PER_SESSION = 1500  # P8: keeps the chance of a hash collision per session tiny
_CATCH_ALL = "~catch_all"


class EngineFailure(StopError):
    """The rules engine failed in a way that makes the decision untrustworthy."""


class _QuietHost(_durable.Host):
    """A Host without the background dispatch/timer threads (P4)."""

    def _run(self) -> None:  # noqa: D401 - durable calls this from __init__
        pass


_EXPONENT = re.compile(r"(?<=[:\[,\s])(-?\d+)([eE][-+]?\d+)")


class _DurableJson:
    """durable's C JSON parser rejects ``6e-05``; it accepts ``6.0e-05`` (P9)."""

    loads = staticmethod(_json.loads)

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        text = _json.dumps(obj, **kwargs)
        if "e-" in text or "e+" in text or "E-" in text or "E+" in text:
            text = _EXPONENT.sub(r"\1.0\2", text)
        return text


_durable.json = _DurableJson


@dataclass(frozen=True)
class RawFiring:
    rule_index: int
    disjunct: int
    bound: dict[str, dict]  # alias -> the fact record it matched


class Runtime:
    """The compiled rules of one constitution, registered once on a private host."""

    def __init__(self, compiled: CompiledRules, name: str):
        self.compiled = compiled
        self.name = name
        self._host = _QuietHost()
        self._lock = threading.Lock()
        self._sink: list[RawFiring] | None = None
        self._errors: list[str] = []
        self._session = 0
        self._retired = 0  # sessions abandoned after a failed assertion (P20)
        self._host.register_rulesets(
            {self._ruleset(k): self._definitions(k) for k in range(compiled.strata)}
        )

    def _ruleset(self, k: int) -> str:
        return f"{self.name}-s{k}"

    def _definitions(self, k: int) -> dict:
        out = {}
        for index, rule in enumerate(self.compiled.rules):
            if rule.stratum != k:
                continue
            for j, atoms in enumerate(rule.disjuncts):
                matched, guarded = _split_joins(atoms)
                definition = durable_rule(rule, matched)
                out[f"{rule.id}#{j}"] = {**definition, "run": self._action(index, j, guarded)}
        out[_CATCH_ALL] = {"all": [{"x": {"$ex": {"t": 1}}}], "pri": 100000, "run": _ignore}  # P3
        return out

    def _action(
        self, rule_index: int, disjunct: int, guarded: tuple[Atom, ...] = ()
    ) -> Callable[[Any], None]:
        check = _Guarded(guarded)

        def run(c: Any) -> None:  # c: durable's closure (untyped)
            try:  # P6: nothing may escape into durable's state silently
                bound = {alias: dict(fact) for alias, fact in c._m.items()}
                if check(bound):
                    if self._sink is None:
                        raise RuntimeError("a firing outside an assertion")
                    self._sink.append(RawFiring(rule_index, disjunct, bound))
            except Exception as exc:  # noqa: BLE001 - recorded and re-raised after the call
                self._errors.append(f"{type(exc).__name__}: {exc}")

        return run

    def run_stratum(self, k: int, shards: Sequence[Sequence[dict]]) -> list[RawFiring]:
        """Assert each shard's facts in an emptied session; return every firing (unordered)."""
        with self._lock:  # P5
            out: list[RawFiring] = []
            self._session = 0
            for shard in shards:
                out.extend(self._run_shard(k, list(shard)))
            return out

    def _run_shard(self, k: int, facts: list[dict]) -> list[RawFiring]:
        if not facts:
            return []
        # Session ids are reused (s1, s2, ... per shard), never fresh: durable keeps a slot per
        # session id it has ever seen, even after delete_state, and fails with MemoryError
        # after about 2,048 of them (found by a long backtest; test_long_runs_do_not_exhaust_durable).
        self._session += 1
        sid = self.last_session
        self._sink, self._errors = [], []
        ruleset = self._ruleset(k)
        try:
            state = self._host.assert_facts(ruleset, [{**f, "sid": sid} for f in facts])
        except _durable.MessageObservedException:  # P8: a false duplicate; split and retry
            self._sink = None
            self._delete(ruleset, sid)
            return self._split(k, facts)
        except Exception as exc:
            # P20: a session whose assertion failed is corrupt inside durable and deleting it
            # (or reusing its id) aborts the process; it is left alone and its id retired.
            self._sink = None
            self._retired += 1
            raise EngineFailure(f"durable-rules failed in stratum {k}: {exc}") from exc
        fired, errors = self._sink, self._errors
        self._sink = None
        self._delete(ruleset, sid)  # P14
        if errors or (isinstance(state, dict) and state.get("exception")):
            raise EngineFailure(
                f"a rule action failed in stratum {k}: {errors or state.get('exception')}"
            )  # P6
        return fired

    def _split(self, k: int, facts: list[dict]) -> list[RawFiring]:
        shared = [f for f in facts if f["t"] in ("m", "u")]
        owned = [f for f in facts if f["t"] not in ("m", "u")]
        accounts = sorted({f["acct"] for f in owned})
        if len(accounts) < 2:
            raise EngineFailure(
                "durable-rules rejected a distinct fact as a duplicate (32-bit id hash collision)"
            )
        half = set(accounts[: len(accounts) // 2])
        first = [f for f in owned if f["acct"] in half]
        second = [f for f in owned if f["acct"] not in half]
        return self._run_shard(k, shared + first) + self._run_shard(k, shared + second)

    def _delete(self, ruleset: str, sid: str) -> None:
        try:
            self._host.delete_state(ruleset, sid)
        except Exception:  # noqa: BLE001 - a session that never started has nothing to delete
            pass

    def session_facts(self, k: int, sid: str) -> list:
        """Facts still resident in a session (tests use this to prove P14 cleanup)."""
        try:
            return list(self._host.get_facts(self._ruleset(k), sid))
        except Exception:  # noqa: BLE001
            return []

    @property
    def last_session(self) -> str:
        return f"s{self._session}" if not self._retired else f"r{self._retired}s{self._session}"


def _ignore(c: Any) -> None:
    return None


def _is_guarded(atom: Atom) -> bool:
    """A comparison with another fact's field (a join reference, maybe inside arithmetic).

    durable-rules has failed at every kind of one: an optional field (P18, a segfault), ``==``
    across int and float (P19), a field absent from its fact (P20, an abort), after an ``$or``
    (P21, misjudged) and in networks of some shapes whatever the fields (P22, a segfault of
    most fresh processes, docs/architecture.md). None is given to it (D214)."""
    return is_joined(atom.operand)


def _split_joins(atoms: tuple[Atom, ...]) -> tuple[tuple[Atom, ...], tuple[Atom, ...]]:
    """(what durable's pattern holds, what ``_Guarded`` judges)."""
    return tuple(a for a in atoms if not _is_guarded(a)), tuple(a for a in atoms if _is_guarded(a))


class _Guarded:
    """The comparisons durable is not given, judged on a firing's bound facts with the
    interpreter's comparison (``engine.rules.interp.compare``: a missing value makes it false),
    as the durable path's set values and explanations are - not with the compiled evaluator's
    closures, so the shadow stays a second judge of every atom it agrees on."""

    def __init__(self, atoms: tuple[Atom, ...]):
        self.atoms = atoms

    def __call__(self, bound: dict[str, dict]) -> bool:
        return all(
            compare(a.op, bound.get(a.alias, {}).get(a.field), _operand(a.operand, bound))
            for a in self.atoms
        )


def _operand(operand: Operand, bound: dict[str, dict]) -> Any:
    if isinstance(operand, FieldRef):
        return bound.get(operand.alias, {}).get(operand.field)
    if isinstance(operand, Arithmetic):
        left, right = _operand(operand.left, bound), _operand(operand.right, bound)
        return None if left is None or right is None else arith(operand.op, left, right)
    return operand


def guarded_rules(rule: CompiledRule) -> list[tuple[Atom, ...]]:
    """Per disjunct, the atoms left out of durable's patterns (P18-P22)."""
    return [_split_joins(atoms)[1] for atoms in rule.disjuncts]


_RUNTIMES: dict[str, Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def runtime_for(digest: str, compiled: CompiledRules) -> Runtime:
    """One runtime per constitution digest for the life of the process (P13)."""
    with _RUNTIMES_LOCK:
        rt = _RUNTIMES.get(digest)
        if rt is None:
            rt = Runtime(compiled, f"c{digest.removeprefix('sha256:')[:16]}")
            _RUNTIMES[digest] = rt
        return rt
