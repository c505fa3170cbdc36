"""Everything that touches the outside world: brokers, market data, storage, notifications."""
