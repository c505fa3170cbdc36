from conftest import position_of


def test_python_object_tag_is_refused_and_not_constructed(validate, bundled_text, tmp_path):
    marker = tmp_path / "pwned"
    bad = bundled_text.replace("  margin_max: 0.60\n", f"  margin_max: !!python/object/apply:os.system ['touch {marker}']\n")
    out = validate(bad)
    line, col = position_of(bad, "!!python")
    assert out.code == 2
    [(got_line, got_col, code, rest)] = out.located()
    assert (got_line, got_col, code) == (line, col, "unsafe-tag")
    assert not marker.exists()


def test_python_name_tag_is_refused(validate):
    out = validate("schema_version: !!python/name:os.system\n")
    assert out.code == 2
    assert out.codes() == {"unsafe-tag"}


def test_unknown_local_tag_is_refused(validate):
    out = validate("schema_version: !secret 1\n")
    assert out.code == 2
    assert out.codes() == {"unknown-tag"}
