from conftest import position_of, replace_once


def test_unknown_action_kind_is_located_at_the_action(validate, bundled_text):
    bad = replace_once(bundled_text, "      - action: kill_switch\n", "      - action: kill_swich\n")
    out = validate(bad)
    line, col = position_of(bad, "kill_swich")
    assert out.code == 2
    assert out.located() == [(line, col, "unknown-action", "rules[0].then[1].action: unknown action kind 'kill_swich' (see docs/actions.md)")]


def test_unknown_action_parameter_is_refused(validate, bundled_text):
    bad = replace_once(bundled_text, "        with: {why: \"'vix_kill'\"}\n", "        with: {wy: \"'vix_kill'\"}\n")
    out = validate(bad)
    assert out.code == 2
    assert out.codes() == {"unknown-param"}
