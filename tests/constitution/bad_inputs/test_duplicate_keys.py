from conftest import position_of, replace_once


def test_duplicate_key_is_refused_and_names_the_first(validate, bundled_text):
    bad = replace_once(bundled_text, "  margin_max: 0.60\n", "  margin_max: 0.60\n  margin_max: 0.90\n")
    out = validate(bad)
    first, _ = position_of(bad, "margin_max: 0.60")
    line, col = position_of(bad, "margin_max: 0.90")
    assert out.code == 2
    assert out.located() == [(line, col, "duplicate-key", f"capital.margin_max: key 'margin_max' appears again (first on line {first})")]


def test_duplicate_top_level_section_is_refused(validate, bundled_text):
    bad = bundled_text + "\nvix:\n  hedged_week: 10\n  safe: 20\n  kill_switch: 30\n  hedged_week_deployment: 0.5\n"
    out = validate(bad)
    line, col = position_of(bad, "vix:\n  hedged_week: 10")
    assert out.code == 2
    assert (line, col, "duplicate-key") in [(ln, c, code) for ln, c, code, _ in out.located()]
