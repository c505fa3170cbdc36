"""Market data and what is derived from it: the exchange calendar, snapshots and the market-data
port, instruments, indicators (ATR), the option model (the implied-volatility surface, the
listed expiries and strikes, the synthetic chain) and strike selection, quotes for valuing
holdings, and facts built from a snapshot.

May import: engine.facts.
"""
