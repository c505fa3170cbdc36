"""``alluse sweep``: one validated constitution per parameter set, each run reproducible from
its digest and seed, the same results in one process, in several, and on a local Ray."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import os
import sys

import pytest

from constitution.errors import InvalidInput
from scheduler import sweep

GRID = """\
from: 2024-01-02
to: 2024-01-05
synthetic: 7
grid:
  vix.kill_switch: [75, 80]
  protocol.levels.L2.atr_multiple: [2.0]
"""


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    return sweep.load_grid(path)


def test_each_parameter_set_is_its_own_validated_constitution(grid, tmp_path, bundled):
    runs = sweep.plan(grid, tmp_path)
    assert [r.params for r in runs] == [
        (("vix.kill_switch", 75), ("protocol.levels.L2.atr_multiple", 2.0)),
        (("vix.kill_switch", 80), ("protocol.levels.L2.atr_multiple", 2.0)),
    ]
    # v1.3's own values give v1.3's digest: the digest names the constitution, not the file
    assert runs[1].digest == bundled.digest != runs[0].digest
    assert "kill_switch: 75" in runs[0].text


def test_every_problem_of_a_grid_is_reported_before_anything_runs(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("from: 2024-01-02\nto: someday\ncolour: red\ngrid: {vix.kill_switch: []}\n")
    with pytest.raises(InvalidInput) as err:
        sweep.load_grid(path)
    codes = sorted(p.code for p in err.value.problems)
    assert codes == ["data", "type", "type", "unknown-key"]
    assert all(p.line > 0 for p in err.value.problems)


def _problems(path, out=None):
    with pytest.raises(InvalidInput) as err:
        sweep.plan(sweep.load_grid(path), out or path.parent / "out")
    return err.value.problems


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_grid_key_the_constitution_lacks_is_named_at_its_line_with_the_keys_there(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(GRID.replace("protocol.levels", "protocol.nope"))
    (p,) = _problems(path)
    assert (p.file, p.line, p.code) == (str(path), _line_of(GRID, "protocol."), "unknown-key")
    assert "the constitution has no key protocol.nope.L2.atr_multiple" in p.message
    assert "(protocol has: " in p.message and "levels" in p.message
    assert not (tmp_path / "out").exists()


def test_a_refused_value_is_located_at_that_value_in_the_grid_once(tmp_path):
    path = tmp_path / "grid.yaml"
    text = GRID.replace("[75, 80]", "[75, -80]").replace("[2.0]", "[1.5, 2.0]")
    path.write_text(text)
    (p,) = _problems(path)  # one problem, though two of the four sets have it
    line = _line_of(text, "kill_switch")
    assert (p.file, p.line, p.col) == (
        str(path),
        line,
        text.splitlines()[line - 1].index("-80") + 1,
    )
    assert p.path == "vix.kill_switch" and "(in 2 of 4 parameter sets, the first" in p.message


def test_a_problem_between_two_values_is_located_in_the_constitution_file(tmp_path, bundled):
    from constitution.load import bundled_path

    path = tmp_path / "grid.yaml"
    path.write_text(GRID.replace("[2.0]", "[0.5]"))  # L2 below L1's 1.0
    (p,) = _problems(path)
    constitution = bundled_path().read_text("utf-8")
    assert (p.file, p.code, p.path) == (str(bundled_path()), "inconsistent", "protocol.levels")
    assert p.line == _line_of(constitution, "  levels:")
    assert "(in every parameter set (2))" in p.message


def test_what_the_grid_names_is_checked_before_anything_runs(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(
        "constitution: nowhere.yaml\nfrom: 2024-01-05\nto: 2024-01-02\n"
        "data: no-such-dir\ngrid: {vix.kill_switch: [75]}\n"
    )
    with pytest.raises(InvalidInput) as err:
        sweep.load_grid(path)
    found = {(p.path, p.code, p.line) for p in err.value.problems}
    assert found == {
        ("constitution", "file-not-found", 1),
        ("to", "range", 3),
        ("data", "file-not-found", 4),
    }
    path.write_text(GRID.replace("synthetic: 7", "synthetic: seven"))
    with pytest.raises(InvalidInput) as err:
        sweep.load_grid(path)
    assert [(p.path, p.code) for p in err.value.problems] == [("synthetic", "type")]


def test_a_used_out_directory_is_refused_before_any_run(grid, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run-001.db").write_bytes(b"an earlier sweep's")
    with pytest.raises(InvalidInput) as err:
        sweep.sweep(grid, out, sweep.local(1))
    (p,) = err.value.problems
    assert p.code == "not-empty" and "run-001.db" in p.message
    assert sorted(f.name for f in out.iterdir()) == ["run-001.db"]
    assert (out / "run-001.db").read_bytes() == b"an earlier sweep's"


def test_a_run_is_json_both_ways(grid, tmp_path):
    for run in sweep.plan(grid, tmp_path):
        assert sweep.Run.from_json(run.to_json()) == run


def test_a_run_that_fails_in_a_worker_is_reported_and_the_others_kept(grid, tmp_path):
    good, other = sweep.plan(grid, tmp_path)
    broken = dataclasses.replace(other, text=good.text)  # its digest is not its text's
    outcomes = sweep.local(2)([good, broken])
    assert [o["run"] for o in outcomes] == [0, 1]
    assert outcomes[0]["row"]["digest"] == good.digest and outcomes[0]["row"]["trades"] >= 0
    assert outcomes[1]["failed"].startswith("AssertionError")


def test_a_worker_that_dies_is_named_and_the_next_run_gets_a_new_one(grid, tmp_path, monkeypatch):
    dies = "import sys; sys.stdin.readline(); sys.stderr.write('out of luck\\n'); sys.exit(3)"
    monkeypatch.setattr(sweep, "_WORKER", (sys.executable, "-c", dies))
    runs = sweep.plan(grid, tmp_path)
    outcomes = sweep._in_workers(runs, 1)  # one worker at a time: the second run needs another
    assert [o["failed"] for o in outcomes] == [
        "the worker process ended (exit code 3): out of luck"
    ] * 2


@pytest.mark.slow
def test_local_processes_give_the_results_of_one_process_and_a_run_repeats(grid, tmp_path):
    one = sweep.sweep(grid, tmp_path / "one", sweep.local(1)).rows
    two = sweep.sweep(grid, tmp_path / "two", sweep.local(2)).rows  # worker processes

    def figures(rows):
        return [{k: v for k, v in r.items() if k != "db"} for r in rows]

    assert figures(one) == figures(two) and len(one) == 2
    again = sweep.run_one(sweep.plan(grid, tmp_path / "again")[0])
    assert {k: v for k, v in again.items() if k != "db"} == figures(one)[0]
    assert one[0]["trades"] > 0 and one[0]["cagr"] is not None


@pytest.mark.slow
def test_a_local_ray_gives_the_same_results(grid, tmp_path):
    if importlib.util.find_spec("ray") is None:
        # The test extra installs ray; under CI its absence is a broken install, not a reason to skip.
        reason = "ray (the 'ray' extra) is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"CI needs ray: {reason}")
        pytest.skip(reason)
    local = sweep.sweep(grid, tmp_path / "local", sweep.local(1)).rows
    on_ray = sweep.sweep(grid, tmp_path / "ray", sweep.on_ray(None)).rows
    strip = lambda rows: [{k: v for k, v in r.items() if k != "db"} for r in rows]  # noqa: E731
    assert strip(on_ray) == strip(local)


@pytest.mark.slow
def test_alluse_sweep_prints_the_table_and_writes_the_csv(tmp_path, capsys):
    from scheduler.cli import main

    path = tmp_path / "grid.yaml"
    path.write_text(GRID.replace("[75, 80]", "[80]"))
    out_dir = str(tmp_path / "out")
    assert main(["sweep", str(path), "--out", out_dir, "--processes", "1", "--shadow"]) == 0
    out = capsys.readouterr().out
    assert "sweep 2024-01-02 .. 2024-01-05: 1 runs" in out and "disagreements" in out
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [r["vix.kill_switch"] for r in rows] == ["80"] and rows[0]["digest"].startswith(
        "sha256:"
    )
    assert rows[0]["disagreements"] == "0"  # --shadow: durable-rules decided each decision too


def test_parquet_needs_pyarrow_or_says_so(tmp_path):
    rows = [{"run": 0, "cagr": 0.1}]
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(InvalidInput) as err:
            sweep.write_table(rows, tmp_path / "r.parquet")
        assert "pyarrow" in err.value.problems[0].message
        return
    import pandas as pd

    sweep.write_table(rows, tmp_path / "r.parquet")
    assert pd.read_parquet(tmp_path / "r.parquet").to_dict("records") == rows


def test_alluse_sweep_says_which_runs_failed_and_exits_1(tmp_path, capsys):
    from scheduler.cli import main

    (tmp_path / "bars").mkdir()  # there, but no bars in it: each run refuses it
    path = tmp_path / "grid.yaml"
    path.write_text(GRID.replace("synthetic: 7", "data: bars"))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--processes", "1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split("): ")[0] + ")" for line in err] == [
        "alluse: sweep run 0 (vix.kill_switch=75, protocol.levels.L2.atr_multiple=2.0)",
        "alluse: sweep run 1 (vix.kill_switch=80, protocol.levels.L2.atr_multiple=2.0)",
    ]
    assert all("no-bars" in line for line in err)
    assert (tmp_path / "out" / "results.csv").read_text().splitlines() == ["run"]


@pytest.mark.slow
def test_a_shadow_sweep_has_both_evaluators_decide_every_run(grid, tmp_path):
    swept = sweep.sweep(grid, tmp_path / "out", sweep.local(2), shadow=True)
    assert [r["disagreements"] for r in swept.rows] == [0, 0] and swept.failures == []
    assert all(r["decided"] > 0 for r in swept.rows)


def test_a_run_whose_evaluators_disagreed_is_reported_as_a_failure(grid, tmp_path):
    def disagreeing(runs):  # the outcomes a shadow run gives when durable-rules disagreed
        return [
            {"run": r.index, "row": {"run": r.index, "disagreements": r.index * 2, "db": r.db}}
            for r in runs
        ]

    swept = sweep.sweep(grid, tmp_path / "out", disagreeing, shadow=True)
    assert len(swept.rows) == 2
    (line,) = swept.failures
    assert line.startswith("run 1 (vix.kill_switch=80, protocol.levels.L2.atr_multiple=2.0):")
    assert "the evaluators disagreed on 2 decisions" in line


def test_an_interrupt_ends_every_worker_at_once_and_starts_no_run(grid, tmp_path, monkeypatch):
    import signal
    import threading
    import time

    hangs = (
        "import os, sys, time, pathlib;"
        f"pathlib.Path({str(tmp_path)!r}, 'pid-' + str(os.getpid())).touch();"
        "sys.stdin.readline(); time.sleep(60)"
    )
    monkeypatch.setattr(sweep, "_WORKER", (sys.executable, "-c", hangs))
    runs = sweep.plan(grid, tmp_path / "out") * 2  # four runs, two workers, each stuck in one

    def ctrl_c_once_both_started():
        while len(list(tmp_path.glob("pid-*"))) < 2:
            time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C

    threading.Thread(target=ctrl_c_once_both_started, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sweep._in_workers(runs, 2)
    assert time.monotonic() - started < 30  # not the workers' 60 s
    pids = [int(p.name[4:]) for p in tmp_path.glob("pid-*")]
    assert len(pids) == 2  # no worker was started for the two runs left
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped


def test_where_the_results_go_is_checked_before_any_run(tmp_path, capsys):
    from scheduler.cli import main

    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    argv = ["sweep", str(path), "--processes", "1"]
    assert main([*argv, "--out", str(a_file)]) == 2
    assert main([*argv, "--out", str(tmp_path / "o1"), "--table", str(tmp_path / "no/t.csv")]) == 2
    assert main([*argv, "--out", str(tmp_path / "o2"), "--table", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--out:1:1: not-a-directory: {a_file} is a file" in err
    assert f"--table:1:1: file-not-found: {tmp_path / 'no'} is not a directory" in err
    assert f"--table:1:1: is-a-directory: {tmp_path} is a directory" in err
    assert a_file.read_text() == "mine"
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()  # nothing ran
