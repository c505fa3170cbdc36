"""Market data and what is derived from it: the exchange calendar, snapshots and the market-data
port, instruments, indicators (ATR), the option model (the implied-volatility surface, the
listed expiries and strikes, the synthetic chain) and strike selection, quotes for valuing
holdings, facts built from a snapshot, and the constitution's values all of these read (params:
``MarketParams``, built once per constitution).

May import: engine.facts.
"""
