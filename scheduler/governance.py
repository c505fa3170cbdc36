"""§15 constitution changes, gated: proposal -> A/B backtest -> human approval -> the live
daemon loads it (docs/operations.md).

* ``propose``  - validate NEW, diff it against CURRENT, backtest both over the same history
  (same data or seed, same dates, each in its own database), write the side-by-side report,
  judge NEW by CURRENT's ``governance.proposals`` thresholds (D113), record the verdict and the
  report's sha256;
* ``approve``  - a person's approval of a proposal that passed, or an override of one that
  failed, named as such, with who and why;
* ``approval_of`` - why a constitution may be loaded by a daemon: released (versions.lock),
  the bundled version, or an approval on record; ``require_approved`` refuses the rest;
* ``history``  - versions run, proposals, verdicts, approvals.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from adapters.storage.governance_store import GovernanceStore
from constitution.diff import diff
from constitution.errors import InvalidInput, Problem
from constitution.load import LoadedConstitution, bundled_path, load_constitution
from constitution.versions import read_lock
from engine.clock import Clock
from scheduler.proposal_gate import Check, Figures, figures_of, gate_checks

if TYPE_CHECKING:
    from scheduler.backtest import BacktestSummary


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Proposal(_Frozen):
    id: str
    version: str
    digest: str
    source: str
    against_version: str
    against_digest: str
    against_source: str
    data: str  # "synthetic:SEED" or "data:DIR"
    first: date
    last: date
    current: Figures
    new: Figures
    checks: tuple[Check, ...]
    verdict: Literal["pass", "fail"]
    report: str
    report_digest: str
    proposed_by: str
    created_at: datetime


# --------------------------------------------------------------------------- propose


@dataclass(frozen=True)
class History:
    """The same history for both backtests."""

    first: date
    last: date
    data_dir: str | None = None
    synthetic_seed: int | None = None

    def label(self) -> str:
        if self.data_dir:
            return f"data:{self.data_dir}"
        return f"synthetic:{self.synthetic_seed}"


def propose(
    new: LoadedConstitution,
    current: LoadedConstitution,
    history: History,
    out_dir: Path,
    db_url: str,
    clock: Clock,
    by: str | None = None,
) -> Proposal:
    """Backtest ``current`` and ``new`` (``load_pair``) over ``history`` into ``out_dir``
    (current.db, new.db, report.html), judge, record in ``db_url``."""
    from scheduler.proposal_report import render

    _fresh_dir(out_dir)
    summaries = {
        which: _backtest(c, history, out_dir / f"{which}.db")
        for which, c in (("current", current), ("new", new))
    }
    figures = {k: figures_of(s) for k, s in summaries.items()}
    checks = gate_checks(current.model.governance.proposals, figures["current"], figures["new"])
    verdict: Literal["pass", "fail"] = "pass" if all(c.passed for c in checks) else "fail"
    proposal_id = (
        "P-"
        + sha256(
            json.dumps(
                [new.digest, current.digest, history.label(), str(history.first), str(history.last)]
            ).encode()  # fmt: skip
        ).hexdigest()[:10]
    )
    draft = dict(
        id=proposal_id,
        version=new.version,
        digest=new.digest,
        source=new.source,
        against_version=current.version,
        against_digest=current.digest,
        against_source=current.source,
        data=history.label(),
        first=history.first,
        last=history.last,
        current=figures["current"],
        new=figures["new"],
        checks=checks,
        verdict=verdict,
        proposed_by=by or login(),
        created_at=clock.now(),
    )
    report_path = out_dir / "report.html"
    compared = _comparison(out_dir, current, new)
    html = render(
        draft, diff(current.model, new.model), summaries["current"], summaries["new"], compared
    )
    report_path.write_text(html, "utf-8")
    digest = "sha256:" + sha256(report_path.read_bytes()).hexdigest()
    proposal = Proposal(**draft, report=str(report_path), report_digest=digest)
    _record(proposal, db_url)
    return proposal


def load_pair(
    new_file: str | Path, against_file: str | Path | None
) -> tuple[LoadedConstitution, LoadedConstitution]:
    problems: list[Problem] = []
    loaded: list[LoadedConstitution] = []
    for f in (new_file, against_file or bundled_path()):
        try:
            loaded.append(load_constitution(f))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems, what="constitution")
    new, current = loaded
    if new.digest == current.digest:
        raise InvalidInput(
            [Problem(new.source, 1, 1, "no-change", "", f"the same content as {current.source}")],
            what="proposal",
        )
    if new.version == current.version:
        raise _at_version(
            new,
            "version-not-bumped",
            f"{new.version} is the version of {current.source}: a change is a new version",
        )
    return new, current


def _at_version(c: LoadedConstitution, code: str, message: str) -> InvalidInput:
    """A problem with the proposed file's version, at its ``meta.version`` (what to edit)."""
    line, col = c.where(("meta", "version"))
    return InvalidInput(
        [Problem(c.source, line, col, code, "meta.version", message)], what="proposal"
    )


def _comparison(
    out_dir: Path, current: LoadedConstitution, new: LoadedConstitution
) -> tuple[str, str] | None:
    """The two runs side by side (``alluse report compare``, issue 19) as OUT/compare.html:
    (file name, sha256), which the report names, so the report's digest covers it too. None
    when the reports extra is not installed."""
    try:
        from scheduler.reports.compare import compare_report
    except ImportError:
        return None
    labels = (f"current {current.version}", f"new {new.version}")
    html = compare_report(str(out_dir / "current.db"), str(out_dir / "new.db"), labels)
    path = out_dir / "compare.html"
    path.write_text(html, "utf-8")
    return path.name, "sha256:" + sha256(path.read_bytes()).hexdigest()


def _fresh_dir(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise _bad(
            "--out", "not-empty", f"{out_dir} is not empty: a proposal writes a new directory"
        )
    out_dir.mkdir(parents=True, exist_ok=True)


def _backtest(constitution: LoadedConstitution, history: History, db: Path) -> BacktestSummary:
    from dataclasses import replace

    from engine.execution.approvals import parse_policy
    from scheduler import compose
    from scheduler.backtest import run_backtest

    policy = parse_policy("auto-approve")  # both versions answered the same way (D115)
    return run_backtest(
        constitution,
        history.first,
        history.last,
        f"sqlite:///{db.resolve()}",
        lambda ctx: compose.paper_cycle_factory(replace(ctx, approvals=policy)),
        data_dir=history.data_dir,
        synthetic_seed=history.synthetic_seed,
    )


def _record(p: Proposal, db_url: str) -> None:
    store = GovernanceStore.open(db_url)
    try:
        store.add_proposal(
            {
                "id": p.id,
                "version": p.version,
                "digest": p.digest,
                "against_digest": p.against_digest,
                "verdict": p.verdict,
                "report_digest": p.report_digest,
                "created_at": p.created_at.isoformat(),
            },
            p.model_dump_json(),
        )
    finally:
        store.close()


# --------------------------------------------------------------------------- approve


class NotApproved(InvalidInput):
    """A daemon was asked to load a constitution no person approved (exit 2)."""


def approve(
    version: str,
    reason: str,
    db_url: str,
    clock: Clock,
    *,
    digest: str | None = None,
    override: bool = False,
    by: str | None = None,
) -> tuple[Proposal, bool]:
    """Record the approval of ``version``'s latest proposal; (proposal, True) when recorded,
    (proposal, False) when it was already approved."""
    if not reason.strip():
        raise _bad("--reason", "empty", "say why: --reason TEXT is recorded with the approval")
    store = GovernanceStore.open(db_url)
    try:
        proposal = _latest_proposal(store, version, digest)
        if store.approvals(proposal.digest):
            return proposal, False
        if proposal.verdict == "fail" and not override:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in proposal.checks if not c.passed)
            raise _bad("VERSION", "gate-failed",
                       f"proposal {proposal.id} of {version} failed its gate ({failed}); approve "
                       "it anyway only with --override and a --reason, recorded as an override")  # fmt: skip
        store.add_approval(
            {
                "version": proposal.version,
                "digest": proposal.digest,
                "proposal_id": proposal.id,
                "override": proposal.verdict == "fail",
                "approved_by": by or login(),
                "reason": reason.strip(),
                "approved_at": clock.now().isoformat(),
            }
        )
    finally:
        store.close()
    return proposal, True


def _latest_proposal(store: GovernanceStore, version: str, digest: str | None) -> Proposal:
    found = [Proposal.model_validate_json(b) for b in store.proposals(version)]
    if digest:
        found = [p for p in found if p.digest == digest or p.digest.startswith(digest)]
    if not found:
        raise _bad("VERSION", "no-proposal",
                   f"no proposal of {version} on record: alluse propose FILE first")  # fmt: skip
    digests = {p.digest for p in found}
    if len(digests) > 1:
        raise _bad("--digest", "ambiguous",
                   f"{version} was proposed with {len(digests)} contents; choose one with "
                   f"--digest ({', '.join(sorted(d[:19] for d in digests))})")  # fmt: skip
    return found[-1]


def approval_of(constitution: LoadedConstitution, db_url: str) -> str | None:
    """Why ``constitution`` may run: 'released', 'bundled', 'approved by ...' (None: not)."""
    if any(r.digest == constitution.digest for r in read_lock().values()):
        return "released (versions.lock)"
    if bundled_digest() == constitution.digest:
        return "the bundled version"
    store = GovernanceStore.open(db_url)
    try:
        found = store.approvals(constitution.digest)
    finally:
        store.close()
    if not found:
        return None
    a = found[-1]
    kind = "override" if a["override"] else "approval"
    return f"{kind} by {a['approved_by']} at {a['approved_at']}: {a['reason']}"


@cache
def bundled_digest() -> str:
    return load_constitution(bundled_path()).digest


def require_approved(constitution: LoadedConstitution, db_url: str) -> str:
    why = approval_of(constitution, db_url)
    if why is None:
        raise NotApproved(
            [
                Problem(
                    constitution.source,
                    1,
                    1,
                    "not-approved",
                    "meta.version",
                    f"version {constitution.version} ({constitution.digest[:19]}...) is not "
                    "approved: alluse propose it, then alluse constitution approve "
                    f"{constitution.version} --reason TEXT",
                )
            ],  # fmt: skip
            what="constitution",
        )
    return why


def unapproved_problem(constitution: LoadedConstitution, db_url: str) -> Problem | None:
    """For the daemon's hot-swap watcher: the refusal of an unapproved version, else None."""
    try:
        require_approved(constitution, db_url)
    except NotApproved as exc:
        return exc.problems[0]
    return None


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class VersionHistory:
    version: str
    digest: str
    first_run: str | None
    proposals: tuple[Proposal, ...]
    approvals: tuple[dict, ...]
    standing: str  # released / bundled / approved / override / not approved


def history(db_url: str) -> list[VersionHistory]:
    store = GovernanceStore.open(db_url, create=False)
    try:
        ran = {d: (v, at) for v, d, at in store.versions_run()}
        proposals = [Proposal.model_validate_json(b) for b in store.proposals()]
        approvals = store.approvals()
    finally:
        store.close()
    released = {r.digest for r in read_lock().values()}
    bundled = bundled_digest()
    digests = list(dict.fromkeys([*ran, *(p.digest for p in proposals)]))
    out = []
    for d in digests:
        mine = tuple(p for p in proposals if p.digest == d)
        signed = tuple(a for a in approvals if a["digest"] == d)
        version = ran[d][0] if d in ran else mine[-1].version
        out.append(
            VersionHistory(
                version,
                d,
                ran.get(d, (None, None))[1],
                mine,
                signed,
                _standing(d, released, bundled, signed),
            )  # fmt: skip
        )
    return out


def _standing(digest: str, released: set[str], bundled: str, approvals: tuple[dict, ...]) -> str:
    if digest in released:
        return "released"
    if digest == bundled:
        return "bundled"
    if approvals:
        return "override" if approvals[-1]["override"] else "approved"
    return "not approved"


def login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _bad(where: str, code: str, message: str) -> InvalidInput:
    return InvalidInput([Problem(where, 1, 1, code, "", message)], what="arguments")
