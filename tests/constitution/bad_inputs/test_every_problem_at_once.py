from conftest import position_of, replace_once


def test_all_problems_are_reported_sorted_in_one_run(validate, bundled_text):
    bad = replace_once(bundled_text, "  margin_max: 0.60\n", "  margin_max: 1.6\n")
    bad = replace_once(bad, "  per_symbol_max: 0.25\n", "  per_symbol_max: lots\n")
    bad = replace_once(bad, "  safe: 65\n", "  safe: 65\n  unsafe: 70\n")
    out = validate(bad)
    located = out.located()
    assert out.code == 2
    assert [c for _, _, c, _ in located] == ["type", "range", "unknown-key"]
    assert [ln for ln, _, _, _ in located] == sorted(ln for ln, _, _, _ in located)
    assert located[0][:2] == position_of(bad, "per_symbol_max: lots")


def test_several_rule_errors_are_all_reported(validate, bundled_text):
    bad = replace_once(bundled_text, "    when: market.vix > params.vix.kill_switch\n", "    when: market.vixx > 1\n")
    bad = replace_once(bad, "      - action: enter_safe_mode\n        with: {why: \"'vix_safe'\"}\n", "      - action: enter_safe\n")
    out = validate(bad)
    assert out.code == 2
    assert out.codes() == {"unknown-field", "unknown-action"}
