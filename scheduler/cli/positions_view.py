"""The positions table of ``alluse paper status``: side, quantity, mark, market value and
unrealised P&L per position, marked with the latest paper decision's facts (options at the
mark the facts carried, shares at the underlying's price)."""

from __future__ import annotations

from adapters.storage.readers import MarkedPosition, ReadOnlyDatabase


def marked_positions(db_url: str) -> list[MarkedPosition]:
    db = ReadOnlyDatabase.open(db_url)
    try:
        return db.marked_positions(mode="paper")
    finally:
        db.close()


def _money(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.2f}"


def position_lines(rows: list[MarkedPosition]) -> list[str]:
    header = (
        f"  {'account':<8} {'contract':<26} {'side':<5} {'qty':>7} {'avg':>9} {'mark':>9} "
        f"{'market value':>14} {'P&L':>12} purpose"
    )
    lines = [header]
    for m in sorted(rows, key=lambda m: (m.position.account, m.position.contract_key)):
        p = m.position
        lines.append(
            f"  {p.account:<8} {p.contract_key:<26} {m.side:<5} {abs(p.quantity):>7} {p.avg_price:>9.2f} "
            f"{_money(m.mark):>9} {_money(m.market_value):>14} {_money(m.pnl):>12} {p.purpose}"
        )
    facts = sorted({m.marked_at for m in rows if m.source == "facts" and m.marked_at})
    if facts:
        lines.append(f"  marks as of {facts[-1]} (the latest paper decision's facts)")
    for m in rows:
        if m.source == "fill":
            lines.append(
                f"  {m.position.account} {m.position.contract_key}: marked at its fill of {m.marked_at}"
            )
    if not facts and not any(m.source for m in rows) and rows:
        lines.append("  no marks: no paper decision in the audit log yet")
    return lines
