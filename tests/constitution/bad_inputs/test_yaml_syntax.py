from conftest import position_of, replace_once


def test_yaml_syntax_error_is_located_at_the_offending_colon(validate, bundled_text):
    bad = replace_once(bundled_text, "  per_symbol_max: 0.25\n", "  per_symbol_max: 0.25: 3\n")
    out = validate(bad)
    line, col = position_of(bad, ": 3")
    assert out.code == 2
    [(got_line, got_col, code, rest)] = out.located()
    assert (got_line, got_col, code) == (line, col, "yaml-syntax")
    assert rest.startswith("mapping values are not allowed")  # libyaml and PyYAML word the end differently


def test_unclosed_flow_mapping_is_a_syntax_error_not_a_traceback(validate):
    out = validate("schema_version: 1\ncapital: {split: {gen: 0.4\n")
    assert out.code == 2
    assert out.codes() == {"yaml-syntax"}
