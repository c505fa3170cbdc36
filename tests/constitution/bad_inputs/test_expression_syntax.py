from conftest import position_of, replace_once


def test_expression_syntax_error_points_at_the_column(validate, bundled_text):
    bad = replace_once(bundled_text, "    when: market.vix > params.vix.kill_switch\n", "    when: market.vix >> params.vix.kill_switch\n")
    out = validate(bad)
    line, col = position_of(bad, "> params.vix.kill_switch", nth=0)
    assert out.code == 2
    [(got_line, got_col, code, rest)] = out.located()
    assert (got_line, got_col, code) == (line, col, "expr-syntax")
    assert rest.startswith("rules[0].when: expected a value")


def test_python_operators_are_refused_with_a_hint(validate, bundled_text):
    bad = replace_once(bundled_text, "    when: not market.broker_connected\n", "    when: market.broker_connected == false && true\n")
    out = validate(bad)
    line, col = position_of(bad, "&&")
    assert out.code == 2
    [(got_line, got_col, code, rest)] = out.located()
    assert (got_line, got_col, code) == (line, col, "expr-syntax")
    assert "use 'and', 'or', 'not'" in rest


def test_code_in_a_condition_is_never_run(validate, bundled_text, tmp_path):
    marker = tmp_path / "pwned"
    bad = replace_once(bundled_text, "    when: market.vix > params.vix.kill_switch\n",
                       f"    when: __import__('os').system('touch {marker}')\n")
    out = validate(bad)
    assert out.code == 2
    assert out.codes() == {"expr-syntax"}
    assert not marker.exists()
