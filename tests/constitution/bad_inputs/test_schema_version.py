from conftest import position_of, replace_once


def test_unknown_schema_version_is_refused_alone(validate, bundled_text):
    bad = replace_once(bundled_text, "schema_version: 1\n", "schema_version: 7\n")
    out = validate(bad)
    line, col = position_of(bad, "schema_version: 7")
    assert out.code == 2
    assert out.located() == [(line, col, "schema-version", "schema_version: unknown schema_version 7 (this ALL-USE reads 1)")]


def test_missing_schema_version_is_refused(validate, bundled_text):
    bad = replace_once(bundled_text, "schema_version: 1\n", "")
    out = validate(bad)
    assert out.code == 2
    assert out.codes() == {"missing"}
