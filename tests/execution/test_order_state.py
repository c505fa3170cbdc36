"""Which order states are final: a final order never changes again (ledger, venue, ladder)."""

from engine.execution.broker import OrderState


def test_filled_cancelled_rejected_and_inactive_are_final_and_nothing_else():
    final = {s for s in OrderState if s.is_final}
    assert final == {
        OrderState.FILLED,
        OrderState.CANCELLED,
        OrderState.REJECTED,
        OrderState.INACTIVE,
    }
