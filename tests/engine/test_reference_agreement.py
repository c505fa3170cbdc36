"""Property: durable-rules and the plain-Python reference matcher decide identically."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rules.evaluate import evaluate
from engine.rules.reference import ReferenceMatcher

SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "SPY"]
TIMES = [
    "2026-11-16T10:00:00-05:00",
    "2026-11-18T10:00:00-05:00",
    "2026-11-19T09:50:00-05:00",
    "2026-11-20T14:45:00-05:00",
    "2026-11-20T15:30:00-05:00",
    "2026-09-25T16:30:00-04:00",
]


@st.composite
def positions(draw):
    sym = draw(st.sampled_from(SYMBOLS))
    if draw(st.booleans()):
        return {
            "symbol": sym,
            "right": "stock",
            "side": "long",
            "shares": draw(st.integers(1, 2000)),
            "cost_basis": 100,
        }
    right = draw(st.sampled_from(["put", "call"]))
    hedge = draw(st.integers(0, 4)) == 0
    p = {
        "symbol": sym,
        "right": right,
        "side": "long" if hedge else "short",
        "purpose": "hedge" if hedge else "income",
        "strike": draw(st.floats(50, 700).map(lambda x: round(x, 1))),
        "expiry": "2026-11-20" if draw(st.booleans()) else "2026-12-18",
        "contracts": draw(st.integers(1, 60)),
        "mark": draw(st.floats(0, 30).map(lambda x: round(x, 2))),
        "delta": draw(st.floats(-1, 1).map(lambda x: round(x, 2))),
    }
    p["entry_debit" if hedge else "entry_credit"] = draw(
        st.floats(0.1, 10).map(lambda x: round(x, 2))
    )
    if not hedge and draw(st.booleans()):
        p["roll_debit"] = draw(st.floats(-1, 5).map(lambda x: round(x, 2)))
    return p


@st.composite
def overlays(draw):
    accounts = []
    for acct in ("GEN", "REV", "COM", "MINI-1"):
        equity = draw(st.floats(50_000, 1_200_000).map(round))
        unique = {}
        for p in draw(st.lists(positions(), max_size=4)):
            unique[(p["symbol"], p["right"], p["side"], p.get("strike"), p.get("expiry"))] = p
        accounts.append(
            {
                "id": acct,
                "equity": equity,
                "high_water_mark": equity * draw(st.sampled_from([1, 1.05, 1.2])),
                "quarter_gains": draw(st.sampled_from([0, 15000])),
                "positions": list(unique.values()),
            }
        )
    underlyings = {
        s: {
            "price": draw(st.floats(50, 700).map(lambda x: round(x, 1))),
            "atr5": draw(st.floats(1, 20).map(lambda x: round(x, 1))),
            "earnings_this_week": draw(st.booleans()),
            "chain_available": draw(st.integers(0, 5)) > 0,
        }
        for s in SYMBOLS
    }
    return {
        "as_of": draw(st.sampled_from(TIMES)),
        "market": {
            "vix": draw(st.sampled_from([15, 19.9, 29, 35, 50, 52, 65, 70, 80, 81])),
            "vix_closes_above_30": draw(st.integers(0, 7)),
            "broker_connected": draw(st.integers(0, 6)) > 0,
            "data_age_seconds": draw(st.sampled_from([1, 30, 31])),
            "underlyings": underlyings,
        },
        "accounts": accounts,
    }


@settings(
    max_examples=int(__import__("os").environ.get("ALLUSE_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(overlay=overlays())
def test_durable_and_reference_agree_on_random_portfolios(bundled, facts_with, overlay):
    facts = facts_with(overlay)
    durable_decision = evaluate(bundled, facts, evaluator="durable")
    reference_decision = evaluate(bundled, facts, ReferenceMatcher(bundled.rules, bundled.model))
    assert durable_decision.to_json() == reference_decision.to_json()
