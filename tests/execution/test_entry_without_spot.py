"""D170 (§0 "margin ≤ 60 %"): a new short put whose underlying has no spot in the snapshot is
margined at its strike, as held shorts are, instead of failing the whole plan."""

from __future__ import annotations

from datetime import date

from engine.execution import planner
from engine.execution.broker import OrderSide
from engine.market.quotes import MarketView
from engine.market.snapshot import MarketSnapshot, OptionChain, OptionContract
from tests.execution.plan_world import AT, action, context, family

PUT = OptionContract(
    underlying="AAPL",
    expiry=date(2024, 6, 28),
    strike=200.0,
    right="put",
    bid=1.00,
    ask=1.02,
    delta=-0.42,
    iv=0.25,
    open_interest=5_000,
    volume=1_000,
)


def test_a_put_on_an_underlying_without_a_spot_is_margined_at_its_strike(bundled):
    chain = OptionChain.from_contracts("AAPL", AT, 200.0, [PUT])
    market = MarketView(MarketSnapshot(as_of=AT, chains={"AAPL": chain}))  # no AAPL quote
    assert market.spot("AAPL") is None
    entry = action(
        "open_short_put",
        "GEN",
        delta={"min": 0.40, "max": 0.45},
        dte={"min": 0, "max": 1},
    )
    entry = entry.model_copy(update={"symbol": "AAPL"})
    ctx = context(
        bundled,
        family({"GEN": 1_000_000}),
        entry,
        accounts={"GEN": {"equity": 1_000_000.0}},
        market=market,
    )
    part = planner.open_short_put(ctx, 0, entry)
    [order] = part.orders
    # per symbol: $1M / 7 Gen tickers = $142,857 of $20,000 collateral -> 7 contracts; the
    # margin at the strike (20 % x $200 x 100 = $4,000 each, within 60 % of $1M) does not bind
    assert (order.request.side, order.request.quantity, order.request.contract.strike) == (
        OrderSide.SELL,
        7,
        200.0,
    )
