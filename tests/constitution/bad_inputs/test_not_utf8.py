def test_latin1_byte_is_located_by_line_and_column(validate):
    content = "schema_version: 1\nmeta:\n  name: Constitution caf\xe9\n".encode("latin-1")
    out = validate(content)
    assert out.code == 2
    [(line, col, code, rest)] = out.located()
    assert (line, col, code) == (3, len("  name: Constitution caf") + 1, "encoding")
    assert "0xe9" in rest


def test_utf8_with_byte_order_mark_is_accepted(validate, bundled_text):
    out = validate(b"\xef\xbb\xbf" + bundled_text.encode("utf-8"))
    assert out.code == 0
