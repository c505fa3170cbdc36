def test_empty_file_is_refused_at_line_one(validate):
    out = validate("")
    assert out.code == 2
    assert out.located() == [(1, 1, "empty", "the file is empty")]


def test_file_with_only_comments_is_empty(validate):
    out = validate("# nothing here\n\n   # still nothing\n")
    assert out.code == 2
    assert out.codes() == {"empty"}


def test_a_bare_scalar_is_not_a_constitution(validate):
    out = validate("just words\n")
    assert out.code == 2
    assert out.codes() == {"type"}
