"""Interactive Brokers: the broker adapter, the market-data adapter and their pure mapping
tables. The only modules that import the IB client library (ib_async, or ib_insync)."""
