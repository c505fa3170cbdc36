import pytest
from hypothesis import given
from hypothesis import strategies as st

from constitution import expr as E


def test_and_binds_tighter_than_or():
    node = E.parse("market.vix > 1 or market.vix < 2 and account.equity > 3")
    assert isinstance(node, E.Or)
    assert isinstance(node.items[1], E.And)


def test_arithmetic_precedence_and_unary_minus():
    node = E.parse("account.equity - account.base_equity * 2 >= -3")
    assert E.render(node) == "(account.equity - (account.base_equity * 2)) >= -3"


def test_in_and_not_in_lists():
    assert (
        E.render(E.parse("account.kind not in ['gen', 'rev']"))
        == "account.kind not in ['gen', 'rev']"
    )
    assert isinstance(E.parse("underlying.symbol in params.sleeves.gen.tickers").right, E.Name)


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("market.vix >", 12),
        ("market.vix > > 1", 13),
        ("(market.vix > 1", 15),
        ("market. > 1", 8),
        ("market.vix = 1", 11),
        ("market.vix > 1 extra", 15),
        ("", 0),
    ],
)
def test_syntax_errors_carry_the_offset(text, offset):
    with pytest.raises(E.ExprError) as err:
        E.parse(text)
    assert err.value.offset == offset


def test_deep_nesting_is_refused_not_a_recursion_error():
    with pytest.raises(E.ExprError, match="deeper"):
        E.parse("(" * 200 + "market.vix" + ")" * 200)


@given(st.text(max_size=80))
def test_any_text_parses_or_raises_expr_error_only(text):
    try:
        E.parse(text)
    except E.ExprError:
        pass
