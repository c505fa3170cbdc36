from conftest import position_of, replace_once


def test_unknown_fact_field_in_a_condition_points_at_the_name(validate, bundled_text):
    bad = replace_once(bundled_text, "    when: market.vix > params.vix.kill_switch\n", "    when: market.vixx > params.vix.kill_switch\n")
    out = validate(bad)
    line, col = position_of(bad, "market.vixx")
    assert out.code == 2
    [(got_line, got_col, code, rest)] = out.located()
    assert (got_line, got_col, code) == (line, col, "unknown-field")
    assert rest.startswith("rules[0].when: 'market.vixx' is not a known fact field")


def test_unknown_entity_is_refused(validate, bundled_text):
    bad = replace_once(bundled_text, "    when: market.vix > params.vix.kill_switch\n", "    when: markets.vix > params.vix.kill_switch\n")
    out = validate(bad)
    assert out.code == 2
    assert out.codes() == {"unknown-field"}


def test_unknown_param_is_refused_with_the_choices(validate, bundled_text):
    bad = replace_once(bundled_text, "    when: market.vix > params.vix.kill_switch\n", "    when: market.vix > params.vix.kil_switch\n")
    out = validate(bad)
    line, col = position_of(bad, "params.vix.kil_switch")
    assert out.code == 2
    [(got_line, got_col, code, rest)] = out.located()
    assert (got_line, got_col, code) == (line, col, "unknown-param")
    assert "kill_switch" in rest


def test_comparing_a_number_with_text_is_a_type_error(validate, bundled_text):
    # durable-rules would evaluate 5 > "30" as true (engines.md P11); we refuse it
    bad = replace_once(bundled_text, "    when: market.vix > params.vix.kill_switch\n", "    when: market.vix > '80'\n")
    out = validate(bad)
    assert out.code == 2
    assert out.codes() == {"type"}


def test_enum_value_outside_its_set_is_refused(validate, bundled_text):
    bad = replace_once(bundled_text, "    when: account.kind == 'gen' and account.gain_over_base", "    when: account.kind == 'generator' and account.gain_over_base")
    out = validate(bad)
    line, col = position_of(bad, "'generator'")
    assert out.code == 2
    assert [(ln, c, code) for ln, c, code, _ in out.located()] == [(line, col, "bad-value")]


def test_setting_an_input_field_is_refused(validate, bundled_text):
    bad = replace_once(bundled_text, "      - set: {market.data_stale: true}\n", "      - set: {market.vix: 0}\n")
    out = validate(bad)
    assert out.code == 2
    assert out.codes() == {"not-derivable"}


def test_a_derivation_cycle_is_refused(validate, bundled_text):
    # account.mode feeds account.entries_frozen, which (after this edit) feeds account.mode
    bad = replace_once(bundled_text, "    when: account.equity >= 0\n    then:\n      - set: {account.mode: market.mode}\n",
                       "    when: account.equity >= 0 and not account.entries_frozen\n    then:\n      - set: {account.mode: market.mode}\n      - set: {account.entries_frozen: account.mode != 'active'}\n")
    out = validate(bad)
    assert out.code == 2
    assert "cycle" in out.codes()
