"""``alluse evaluate`` (one dry-run evaluation) and ``alluse test`` (scenario files)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from constitution.load import bundled_path, load_constitution
from engine.cycle.pipeline import after_evaluation
from engine.facts.load import load_facts
from engine.market import calendar
from engine.rules.evaluate import evaluate
from scheduler.cli import render_decision

if TYPE_CHECKING:
    import argparse

    from constitution.load import LoadedConstitution
    from engine.records.decision import Decision
    from scheduler.cli import SubParsers


def register(sub: SubParsers) -> None:
    p = sub.add_parser(
        "evaluate", help="one dry-run evaluation: actions with reasons; nothing is sent"
    )
    p.add_argument("--facts", required=True, metavar="FILE", help="facts document (YAML or JSON)")
    p.add_argument(
        "--constitution", metavar="FILE", help="constitution file (default: the bundled v1.3)"
    )
    p.add_argument(
        "--json", action="store_true", help="print the decision as one canonical JSON document"
    )
    p.add_argument(
        "--record", action="store_true", help="append the decision to the audit log (mode dry-run)"
    )
    p.add_argument(
        "--db",
        metavar="URL",
        help="audit-log database URL (default: ALLUSE_DB or the per-user file)",
    )
    _evaluator_options(p, "evaluate with both evaluators; exit 1 if they disagree")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "test", help="run constitution scenario files (facts in, expected actions out)"
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="scenario files or directories (default: tests/scenarios)",
    )
    p.add_argument(
        "--constitution", metavar="FILE", help="constitution file (default: the bundled v1.3)"
    )
    p.add_argument("--verbose", "-v", action="store_true", help="list every scenario")
    _evaluator_options(p, "run every scenario on both evaluators; a disagreement fails it")
    p.set_defaults(func=cmd_test)


def _evaluator_options(p: argparse.ArgumentParser, shadow_help: str) -> None:
    p.add_argument(
        "--evaluator",
        choices=["compiled", "durable"],
        default="compiled",
        help="which rules evaluator decides (the same decision, byte for byte; default compiled)",
    )
    p.add_argument("--shadow", action="store_true", help=shadow_help)


def cmd_evaluate(args: argparse.Namespace) -> int:
    constitution = load_constitution(args.constitution or bundled_path())
    facts = load_facts(args.facts)
    if args.shadow:
        from engine.rules.shadow import decide_both

        evaluated, disagreement = decide_both(constitution, facts)
        if disagreement is not None:
            print(f"alluse: the evaluators disagree at {disagreement.where}", file=sys.stderr)
            return 1
        # on stderr: --json output stays one document
        print("alluse: compiled and durable-rules agree, byte for byte", file=sys.stderr)
    else:
        evaluated = evaluate(constitution, facts, evaluator=args.evaluator)
    # one intent per position (arbitration); no risk review in a dry run
    decision = after_evaluation(constitution, evaluated, None)
    closed = calendar.closed_note(facts.as_of_new_york.date())
    if closed is not None:  # on stderr: --json output stays one document
        print(f"alluse: {closed}", file=sys.stderr)
    if args.record:
        _record(decision, constitution, args.db)
    if args.json:
        sys.stdout.buffer.write(decision.to_json() + b"\n")
    else:
        render_decision.decision_table(decision)
    return 0


def _record(decision: Decision, constitution: LoadedConstitution, db_url: str | None) -> None:
    from scheduler.compose import record_decision  # the composition root owns storage

    record_decision(decision, constitution, mode="dry-run", db_url=db_url)


def cmd_test(args: argparse.Namespace) -> int:
    from scheduler.scenarios import run_scenarios

    constitution = load_constitution(args.constitution or bundled_path())
    results = run_scenarios(
        args.paths or ["tests/scenarios"], constitution, args.evaluator, args.shadow
    )
    failed = [r for r in results if not r.passed]
    for r in results:
        if args.verbose or not r.passed:
            print(f"{'PASS' if r.passed else 'FAIL'} {r.name}")
            for line in r.failures:
                print(f"     {line}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if not results:
        print("alluse: no scenarios found", file=sys.stderr)
        return 2
    return 1 if failed else 0


def dumps(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
