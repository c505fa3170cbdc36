"""`alluse ib check` against the stub gateway (the real client, read-only)."""

from __future__ import annotations

from scheduler.cli import main

from .conftest import ACCOUNTS


def _args(port: int, *extra: str) -> list[str]:
    mapping = [a for sub, code in ACCOUNTS.items() for a in ("--account", f"{sub}={code}")]
    return [
        "ib",
        "check",
        "--port",
        str(port),
        "--client-id",
        "31",
        "--timeout",
        "2",
        *mapping,
        *extra,
    ]


def test_check_reports_accounts_positions_and_permissions(stub, capsys):
    code = main(_args(stub.port))
    out = capsys.readouterr().out
    assert code == 0
    assert "sub-account GEN -> DU*11" in out and "MSFT" in out
    assert not any(code in out for code in ("DU111", "DU222", "DU333", "DU444"))  # masked
    assert "options data with model greeks" in out


def test_check_names_a_missing_options_subscription(stub, capsys):
    stub.faults.no_option_data = True
    code = main(_args(stub.port))
    captured = capsys.readouterr()
    assert code == 3
    assert "MISSING  options data for SPY" in captured.out
    assert "subscription" in captured.err
    assert stub.count_requests(3) == 0  # nothing was sent as an order


def test_check_exits_3_when_the_gateway_is_unreachable(stub, capsys):
    port = stub.port
    stub.stop()
    code = main(_args(port))
    assert code == 3
    assert "cannot reach TWS/IB Gateway" in capsys.readouterr().err
