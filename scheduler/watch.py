"""Watching the constitution file while the daemon runs.

Polled at every cycle boundary (never mid-cycle): a read and a sha256, and a full load only
when the bytes changed. Three outcomes:

* ``None``    - unchanged, or changed without changing its meaning (same digest: comments);
* ``Swap``    - a valid new version: the daemon swaps it in before the next cycle;
* ``Refusal`` - the edit is invalid (every located problem, as ``alluse validate`` prints
  them), or changes a released version without bumping it (governance: released versions
  are immutable), or the ``gate`` refuses it (a live daemon loads only an approved version,
  scheduler.governance). The last good version keeps running. A version refused only by the
  gate is checked again at every boundary and swapped in once it is approved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from constitution.errors import InvalidInput, Problem
from constitution.load import LoadedConstitution, load_constitution


@dataclass(frozen=True)
class Swap:
    old: LoadedConstitution
    new: LoadedConstitution

    def detail(self) -> dict:
        return {
            "event": "constitution_swapped",
            "source": self.new.source,
            "from": {"version": self.old.version, "digest": self.old.digest},
            "to": {"version": self.new.version, "digest": self.new.digest},
        }


@dataclass(frozen=True)
class Refusal:
    source: str
    problems: tuple[Problem, ...]
    running: LoadedConstitution

    def detail(self) -> dict:
        return {
            "event": "constitution_refused",
            "source": self.source,
            "problems": [p.render() for p in self.problems],
            "running": {"version": self.running.version, "digest": self.running.digest},
        }


Gate = Callable[[LoadedConstitution], Problem | None]


class ConstitutionWatcher:
    def __init__(self, path: str | Path, current: LoadedConstitution, gate: Gate | None = None):
        self.path = Path(path)
        self.current = current
        self.gate = gate
        self._seen = self._fingerprint()
        self._awaiting: LoadedConstitution | None = None  # valid, refused by the gate

    def _fingerprint(self) -> str | None:
        try:
            return sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def poll(self) -> Swap | Refusal | None:
        seen = self._fingerprint()
        if seen == self._seen:
            return self._recheck()
        self._seen = seen
        self._awaiting = None
        if seen is None:
            problem = Problem(
                str(self.path), 1, 1, "file-missing", "", "the constitution file cannot be read"
            )
            return Refusal(str(self.path), (problem,), self.current)
        try:
            new = load_constitution(self.path)
        except InvalidInput as exc:
            return Refusal(str(self.path), exc.problems, self.current)
        if new.digest == self.current.digest:
            return None
        if new.version == self.current.version and self.current.model.governance.immutable:
            problem = Problem(
                str(self.path),
                *new.where(("meta", "version")),
                "version-not-bumped",
                "meta.version",
                f"version {new.version} is running with another content; a change needs a new version and a changelog entry",
            )
            return Refusal(str(self.path), (problem,), self.current)
        refused = self.gate(new) if self.gate is not None else None
        if refused is not None:
            self._awaiting = new
            return Refusal(str(self.path), (refused,), self.current)
        old, self.current = self.current, new
        return Swap(old, new)

    def _recheck(self) -> Swap | None:
        if self._awaiting is None or self.gate is None or self.gate(self._awaiting) is not None:
            return None
        new, self._awaiting = self._awaiting, None
        old, self.current = self.current, new
        return Swap(old, new)
