from conftest import position_of, replace_once


def test_text_where_a_number_belongs_is_a_type_error(validate, bundled_text):
    bad = replace_once(bundled_text, "  per_symbol_max: 0.25\n", "  per_symbol_max: lots\n")
    out = validate(bad)
    line, col = position_of(bad, "per_symbol_max: lots")
    assert out.code == 2
    [(got_line, got_col, code, rest)] = out.located()
    assert (got_line, got_col, code) == (line, col, "type")
    assert rest.startswith("capital.per_symbol_max:")


def test_a_mapping_where_a_list_belongs_is_a_type_error(validate, bundled_text):
    bad = replace_once(bundled_text, "    tickers: [NVDA, TSLA]\n", "    tickers: {NVDA: 1}\n")
    out = validate(bad)
    line, col = position_of(bad, "tickers: {NVDA: 1}")
    assert out.code == 2
    assert [(ln, c, code) for ln, c, code, _ in out.located()] == [(line, col, "type")]
