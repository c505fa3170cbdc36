from conftest import position_of, replace_once


def test_margin_above_100_percent_is_out_of_range(validate, bundled_text):
    bad = replace_once(bundled_text, "  margin_max: 0.60\n", "  margin_max: 1.6\n")
    out = validate(bad)
    line, col = position_of(bad, "margin_max: 1.6")
    assert out.code == 2
    [(got_line, got_col, code, rest)] = out.located()
    assert (got_line, got_col, code) == (line, col, "range")
    assert rest.startswith("capital.margin_max:")


def test_negative_vix_threshold_is_out_of_range(validate, bundled_text):
    bad = replace_once(bundled_text, "  hedged_week: 50\n", "  hedged_week: -50\n")
    out = validate(bad)
    line, col = position_of(bad, "hedged_week: -50")
    assert out.code == 2
    assert (line, col, "range") in [(ln, c, code) for ln, c, code, _ in out.located()]
