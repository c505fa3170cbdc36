import time


def _billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "schema_version: 1\n" + "\n".join(lines) + "\n"


def test_anchor_alias_bomb_is_refused_quickly(validate):
    started = time.perf_counter()
    out = validate(_billion_laughs())
    elapsed = time.perf_counter() - started
    assert out.code == 2
    assert out.codes() == {"alias-bomb"}
    assert elapsed < 10  # a generous bound: expansion would take hours and gigabytes


def test_merge_keys_are_refused(validate):
    out = validate("base: &b {x: 1}\nschema_version: 1\nother:\n  <<: *b\n")
    assert out.code == 2
    assert "merge-key" in out.codes()
