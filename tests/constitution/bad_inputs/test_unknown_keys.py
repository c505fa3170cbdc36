from conftest import position_of, replace_once


def test_misspelled_key_is_an_unknown_key_at_its_position(validate, bundled_text):
    bad = replace_once(bundled_text, "  margin_max: 0.60\n", "  margin_max: 0.60\n  margn_max: 0.50\n")
    out = validate(bad)
    line, col = position_of(bad, "margn_max")
    assert out.code == 2
    assert out.located() == [(line, col, "unknown-key", "capital.margn_max: unknown key 'margn_max'")]


def test_unknown_key_inside_a_rule_is_located(validate, bundled_text):
    bad = replace_once(bundled_text, "    salience: 1\n", "    salience: 1\n    salinece: 2\n")
    out = validate(bad)
    line, col = position_of(bad, "salinece")
    assert out.code == 2
    assert (line, col, "unknown-key") in [(ln, c, code) for ln, c, code, _ in out.located()]
