"""Issue 2 benchmark: loading and validating v1.3 (all five passes); target well under 50 ms."""

from constitution.load import bundled_path, load_constitution


def test_bench_load_and_validate_v13(benchmark):
    benchmark.group = "constitution"
    loaded = benchmark(load_constitution, bundled_path())
    assert loaded.version == "1.3.1"
