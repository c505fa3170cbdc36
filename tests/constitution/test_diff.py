import json

from constitution.diff import diff
from constitution.load import load_constitution_text
from scheduler.cli import main


def test_diff_names_each_changed_path_with_old_and_new(bundled, bundled_text, tmp_path, capsys):
    edited = (
        bundled_text.replace("  kill_switch: 80\n", "  kill_switch: 85\n")
        .replace("    tickers: [NVDA, TSLA]\n", "    tickers: [NVDA, TSLA, AMD]\n")
        .replace(
            "    when: market.vix > params.vix.kill_switch\n",
            "    when: market.vix >= params.vix.kill_switch\n",
        )
    )
    path = tmp_path / "edited.yaml"
    path.write_text(edited)
    assert main(["diff", "constitution/v1.3.yaml", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    params = {c["path"]: (c["old"], c["new"]) for c in out["parameters"]}
    assert params == {
        "vix.kill_switch": (80.0, 85.0),
        "sleeves.rev.tickers": (["NVDA", "TSLA"], ["NVDA", "TSLA", "AMD"]),
    }
    [rule] = out["rules"]["changed"]
    assert rule["id"] == "vix.kill_switch"
    assert rule["changes"] == [
        {
            "path": "when",
            "old": "market.vix > params.vix.kill_switch",
            "new": "market.vix >= params.vix.kill_switch",
        }
    ]


def test_diff_text_lists_added_and_removed_rules(bundled, bundled_text, tmp_path, capsys):
    start = bundled_text.index("  - id: fork.rev")
    end = bundled_text.index("  - id: merge.mini")
    path = tmp_path / "fewer.yaml"
    path.write_text(bundled_text[:start] + bundled_text[end:])
    assert main(["diff", "constitution/v1.3.yaml", str(path)]) == 0
    out = capsys.readouterr().out
    assert "removed  rule fork.rev" in out


def test_identical_files_have_no_differences(bundled):
    assert diff(bundled.model, bundled.model).empty


def test_layout_changes_in_a_condition_are_not_differences(bundled, bundled_text):
    relaid = load_constitution_text(
        bundled_text.replace(
            "    when: market.vix > params.vix.kill_switch\n",
            "    when: (market.vix  >  params.vix.kill_switch)\n",
        ),
        "x",
    )
    assert diff(bundled.model, relaid.model).empty


def test_diff_of_an_invalid_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 9\n")
    assert main(["diff", "constitution/v1.3.yaml", str(bad)]) == 2
