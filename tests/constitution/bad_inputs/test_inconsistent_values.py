from conftest import position_of, replace_once


def test_splits_must_sum_to_100_percent(validate, bundled_text):
    bad = replace_once(bundled_text, "split: {gen: 0.40, rev: 0.30, com: 0.30}", "split: {gen: 0.40, rev: 0.30, com: 0.40}")
    out = validate(bad)
    line, col = position_of(bad, "split: {gen: 0.40")
    assert out.code == 2
    assert out.located() == [(line, col, "inconsistent", "capital.split: gen + rev + com must be 100 % (is 110 %)")]


def test_vix_tiers_must_increase(validate, bundled_text):
    bad = replace_once(bundled_text, "  safe: 65\n", "  safe: 45\n")
    out = validate(bad)
    line, col = position_of(bad, "vix:\n  hedged_week")
    assert out.code == 2
    [(got_line, got_col, code, rest)] = out.located()
    assert (got_line, got_col, code) == (line, col, "inconsistent")
    assert "hedged_week 50.0 < safe 45.0 < kill_switch 80.0" in rest


def test_entry_window_outside_market_hours_is_refused(validate, bundled_text):
    bad = replace_once(bundled_text, 'entry: {day: wed, start: "09:45", end: "11:00"}', 'entry: {day: wed, start: "09:45", end: "16:30"}')
    out = validate(bad)
    line, col = position_of(bad, 'entry: {day: wed')
    assert out.code == 2
    assert [(ln, c, code) for ln, c, code, _ in out.located()] == [(line, col, "inconsistent")]


def test_delta_band_outside_zero_one_is_refused(validate, bundled_text):
    bad = replace_once(bundled_text, "    delta: {min: 0.30, max: 0.35}\n", "    delta: {min: 0.30, max: 1.35}\n")
    out = validate(bad)
    line, col = position_of(bad, "delta: {min: 0.30, max: 1.35}")
    assert out.code == 2
    assert (line, col, "inconsistent") in [(ln, c, code) for ln, c, code, _ in out.located()]


def test_protocol_levels_must_increase(validate, bundled_text):
    bad = replace_once(bundled_text, "L2: {name: Recovery, atr_multiple: 2.0", "L2: {name: Recovery, atr_multiple: 0.5")
    out = validate(bad)
    line, col = position_of(bad, "levels:\n    L0")
    assert out.code == 2
    assert [(ln, c, code) for ln, c, code, _ in out.located()] == [(line, col, "inconsistent")]
