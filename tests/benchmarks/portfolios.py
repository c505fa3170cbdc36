"""Benchmark facts: a three-sleeve portfolio with 10 positions, and 1,000 accounts."""

from __future__ import annotations

from engine.facts.load import facts_from_data

UNDERLYINGS = {
    "AAPL": {"price": 200, "atr5": 4},
    "MSFT": {"price": 400, "atr5": 6},
    "AMZN": {"price": 200, "atr5": 4},
    "GOOG": {"price": 170, "atr5": 3},
    "GOOGL": {"price": 170, "atr5": 3},
    "SPY": {"price": 590, "atr5": 6},
    "QQQ": {"price": 505, "atr5": 8},
    "IWM": {"price": 230, "atr5": 4},
    "NVDA": {"price": 140, "atr5": 5},
    "TSLA": {"price": 330, "atr5": 14, "earnings_this_week": True},
    "META": {"price": 580, "atr5": 12},
}


def _put(sym, strike, credit=2.0, mark=1.0, delta=-0.4, expiry="2026-11-20", contracts=10, **extra):
    return {
        "symbol": sym,
        "right": "put",
        "side": "short",
        "strike": strike,
        "expiry": expiry,
        "contracts": contracts,
        "entry_credit": credit,
        "mark": mark,
        "delta": delta,
        **extra,
    }


def _account(acct, kind, equity, positions):
    return {
        "id": acct,
        "kind": kind,
        "equity": equity,
        "base_equity": equity * 0.97,
        "high_water_mark": equity * 1.02,
        "cash": equity * 0.5,
        "opened": "2026-01-02",
        "positions": positions,
    }


def portfolio_data(as_of="2026-11-19T10:00:00-05:00", prefix="") -> list[dict]:
    return [
        _account(
            f"{prefix}GEN",
            "gen",
            412000,
            [
                _put("AAPL", 198),
                _put("MSFT", 404.5, mark=5.0, delta=-0.6),
                _put("SPY", 602, mark=14.0, delta=-0.85),
                _put("QQQ", 500),
            ],
        ),
        _account(
            f"{prefix}REV",
            "rev",
            300000,
            [
                _put("NVDA", 148, expiry="2026-11-21", mark=9.0, delta=-0.7, roll_debit=1.5),
                _put("TSLA", 310, expiry="2026-11-21"),
            ],
        ),
        _account(
            f"{prefix}COM",
            "com",
            310000,
            [
                {
                    "symbol": "NVDA",
                    "right": "stock",
                    "side": "long",
                    "shares": 1000,
                    "cost_basis": 120,
                },
                {
                    "symbol": "AAPL",
                    "right": "stock",
                    "side": "long",
                    "shares": 500,
                    "cost_basis": 180,
                },
                {
                    "symbol": "META",
                    "right": "stock",
                    "side": "long",
                    "shares": 200,
                    "cost_basis": 520,
                },
                {
                    "symbol": "NVDA",
                    "right": "call",
                    "side": "short",
                    "strike": 150,
                    "expiry": "2026-11-21",
                    "contracts": 5,
                    "entry_credit": 2.0,
                    "mark": 0.6,
                    "delta": 0.12,
                },
            ],
        ),
    ]


def _facts(accounts, as_of, vix=24):
    return facts_from_data(
        {
            "as_of": as_of,
            "market": {"vix": vix, "vix_closes_above_30": 0, "underlyings": UNDERLYINGS},
            "accounts": accounts,
        }
    )


def portfolio(as_of="2026-11-19T10:00:00-05:00"):
    return _facts(portfolio_data(as_of), as_of)


def many_accounts(n_groups=334, as_of="2026-11-19T10:00:00-05:00"):
    """About 1,000 accounts (334 three-sleeve groups) with 10 positions per group."""
    accounts = [a for g in range(n_groups) for a in portfolio_data(as_of, prefix=f"G{g:03d}-")]
    return _facts(accounts, as_of)
